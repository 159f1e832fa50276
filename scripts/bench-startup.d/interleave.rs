//! Runs each command (one per argument, split on spaces) once per round, in turn, for
//! `ROUNDS` rounds after 20 warm-up rounds, so a noisy machine's load falls on every
//! command alike. Prints each command's median wall time and mean CPU time (user + sys,
//! from the children's rusage), and both as a ratio to the first command.
//! Built with plain `rustc` by `scripts/bench-startup` (no dependencies).

use std::process::{Command, Stdio};
use std::time::Instant;

#[repr(C)]
#[derive(Default, Clone, Copy)]
struct Rusage {
    utime: [i64; 2],
    stime: [i64; 2],
    rest: [i64; 14],
}

unsafe extern "C" {
    fn getrusage(who: i32, usage: *mut Rusage) -> i32;
}

/// CPU time of all waited-for children so far (RUSAGE_CHILDREN), in ms.
fn children_cpu_ms() -> f64 {
    let mut r = Rusage::default();
    unsafe { getrusage(-1, &mut r) };
    (r.utime[0] + r.stime[0]) as f64 * 1e3 + (r.utime[1] + r.stime[1]) as f64 / 1e3
}

fn main() {
    let rounds: usize = std::env::var("ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(1000);
    // A command's last word `<path` is its stdin (git's request); otherwise stdin is null.
    let commands: Vec<Vec<String>> = std::env::args()
        .skip(1)
        .map(|c| c.split(' ').map(String::from).collect())
        .collect();
    let stdin = |c: &[String]| match c.last().and_then(|w| w.strip_prefix('<')) {
        Some(path) => Stdio::from(std::fs::File::open(path).expect("stdin file")),
        None => Stdio::null(),
    };
    let args = |c: &[String]| -> usize {
        c.len() - usize::from(c.last().is_some_and(|w| w.starts_with('<')))
    };
    let mut wall = vec![Vec::with_capacity(rounds); commands.len()];
    let mut cpu = vec![Vec::with_capacity(rounds); commands.len()];
    for round in 0..rounds + 20 {
        for (i, c) in commands.iter().enumerate() {
            let cpu0 = children_cpu_ms();
            let start = Instant::now();
            let input = stdin(c);
            let status = Command::new(&c[0])
                .args(&c[1..args(c)])
                .stdin(input)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .expect("spawn");
            let elapsed = start.elapsed().as_secs_f64() * 1e3;
            assert!(status.success(), "{:?} failed", c);
            if round >= 20 {
                wall[i].push(elapsed);
                cpu[i].push(children_cpu_ms() - cpu0);
            }
        }
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(|a, b| a.partial_cmp(b).unwrap());
        v[v.len() / 2]
    };
    let walls: Vec<f64> = wall.iter_mut().map(median).collect();
    let cpus: Vec<f64> = cpu
        .iter()
        .map(|v| v.iter().sum::<f64>() / v.len() as f64)
        .collect();
    println!("{rounds} interleaved rounds; ratios to the first command");
    for ((c, w), u) in commands.iter().zip(&walls).zip(&cpus) {
        let name: String = c.join(" ").chars().take(60).collect();
        println!(
            "{name:60} wall median {w:6.3} ms {:5.2}x | cpu mean {u:6.3} ms {:5.2}x",
            w / walls[0],
            u / cpus[0]
        );
    }
}
