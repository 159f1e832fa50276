//! A `tokenhost serve` process for tests of real clients (git, kubectl) that want one:
//! started from a prepared command, waited for, killed on drop.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running broker; killed (and reaped) when dropped.
pub struct BrokerProcess(Child);

impl BrokerProcess {
    /// Runs `command` (the `tokenhost` binary with the test's environment) as
    /// `serve -c config` and waits until its socket in `run_dir/tokenhost` accepts.
    pub fn start(mut command: Command, run_dir: &Path, config: &Path) -> BrokerProcess {
        let child = command
            .args(["serve", "-c"])
            .arg(config)
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let broker = BrokerProcess(child);
        let socket = tokenhost::broker::socket_path_in(&run_dir.join("tokenhost"), config);
        let started = Instant::now();
        while std::os::unix::net::UnixStream::connect(&socket).is_err() {
            assert!(started.elapsed() < Duration::from_secs(30), "no broker");
            std::thread::sleep(Duration::from_millis(20));
        }
        broker
    }
}

/// The source calls of the first provider, as the broker for `config` in
/// `run_dir/tokenhost` counts them; `None` when no broker answers.
pub fn source_calls(run_dir: &Path, config: &Path) -> Option<u64> {
    let socket = tokenhost::broker::socket_path_in(&run_dir.join("tokenhost"), config);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let mut client = tokenhost::broker::BrokerClient::connect(&socket).await?;
        Some(client.providers().await.ok()?[0].source_calls)
    })
}

impl Drop for BrokerProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
