//! The floor for a broker client: connect to the socket given as the only argument, send
//! one HTTP/1.1 request for provider `plugin`, print the body. No checks, no parsing.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;

fn main() {
    let socket = std::env::args().nth(1).expect("usage: floor <socket>");
    let mut stream = UnixStream::connect(socket).expect("connect");
    stream
        .write_all(b"GET /v1/token/plugin HTTP/1.1\r\nhost: b\r\nconnection: close\r\n\r\n")
        .expect("write");
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).expect("read");
    let text = String::from_utf8_lossy(&answer);
    println!("{}", text.split("\r\n\r\n").nth(1).unwrap_or(""));
}
