//! `Client::read_file`: a file of a build's result read through the
//! gateway's ReadFile, without exporting anything — a small one, one larger
//! than a message (read in chunks), and one that is not there — on both
//! engine generations.

mod support;

use rbuild::{Address, Build, BuildError, Client, ConnectOptions};
use support::buildx::{modern_engine, old_engine};
use support::{context, stack};

#[tokio::test(flavor = "multi_thread")]
async fn a_file_of_the_result_is_read_without_an_output() {
    let stack = stack();
    let dir = context(&[(
        "Dockerfile",
        &format!(
            "FROM {}\nRUN echo tests passed > /report.txt && head -c 5000000 /dev/zero > /big.bin\n",
            stack.base
        ),
    )]);
    for addr in [old_engine(), modern_engine()] {
        let address: Address = addr.parse().unwrap();
        let client = Client::connect(address, &ConnectOptions::default())
            .await
            .unwrap();
        let build = Build::new(dir.path());
        let report = client.read_file(&build, "/report.txt").await.unwrap();
        assert_eq!(&report[..], b"tests passed\n", "{addr}");
        let big = client.read_file(&build, "/big.bin").await.unwrap();
        assert_eq!(big.len(), 5_000_000, "{addr}");
        assert!(big.iter().all(|&b| b == 0), "{addr}");
        let err = client.read_file(&build, "/no/such/file").await.unwrap_err();
        assert!(
            matches!(&err, BuildError::Daemon { message } if message.starts_with("cannot read /no/such/file: ")),
            "{addr}: {err}"
        );
    }
}
