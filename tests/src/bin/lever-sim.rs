//! The Lever API simulator for the local stack.
//!
//! ```text
//! lever-sim [--port 4010] [--key demo-key]... [--rate 10] [--burst 20] [--retry-after] [--opportunities N]
//! ```
//! Prints the base URL (`http://127.0.0.1:PORT/v1`) on the first line of stdout and serves until
//! killed. Each `--key` gets every permission, confidential access included. `--port 0` picks a
//! free port. Faults, more keys and the request log are under `/_admin` (see simulator::admin).

use lever_bridge_tests::simulator::{KeyPerms, SimConfig, Simulator};
use std::io::Write;
use std::net::SocketAddr;

fn usage() -> ! {
    eprintln!(
        "usage: lever-sim [--port 4010] [--key KEY]... [--rate 10] [--burst 20] [--retry-after] [--opportunities N]"
    );
    std::process::exit(2)
}

fn number<T: std::str::FromStr>(value: Option<String>) -> T {
    value
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| usage())
}

#[tokio::main]
async fn main() {
    let mut port: u16 = 4010;
    let mut keys = Vec::new();
    let mut config = SimConfig::default();
    let mut opportunities = 0usize;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--port" => port = number(args.next()),
            "--key" => keys.push(args.next().unwrap_or_else(|| usage())),
            "--rate" => config.rate_per_sec = number(args.next()),
            "--burst" => config.burst = number(args.next()),
            "--retry-after" => config.retry_after_header = true,
            "--opportunities" => opportunities = number(args.next()),
            _ => usage(),
        }
    }
    let sim = Simulator::start_on(config, SocketAddr::from(([127, 0, 0, 1], port)))
        .await
        .unwrap_or_else(|e| {
            eprintln!("lever-sim: cannot listen on 127.0.0.1:{port}: {e}");
            std::process::exit(1)
        });
    for key in &keys {
        sim.add_key(key, KeyPerms::all());
    }
    sim.add_opportunities(opportunities);
    println!("{}", sim.base_url());
    std::io::stdout().flush().ok();
    std::future::pending::<()>().await;
}
