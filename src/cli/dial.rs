//! `rbuild dial-stdio`: the daemon's byte stream on stdin/stdout, as
//! `buildctl dial-stdio` offers it. Installed as `buildctl` in a container
//! next to a daemon, it serves `docker-container://` clients (rbuild's and
//! buildx's); as the remote command of an `ssh://` address it reaches a
//! host's Docker Engine, which `buildctl` cannot. Both of rbuild's stdio
//! transports are tested that way against the engine's real BuildKit.

use clap::Args;
use tokio::io::AsyncWriteExt;

use super::GlobalArgs;

#[derive(Debug, Args)]
pub struct DialStdioArgs {}

pub async fn run(global: &GlobalArgs, _args: DialStdioArgs) -> anyhow::Result<u8> {
    let (addr, opts) = global.endpoint()?;
    let io = rbuild::connect::dial(&addr, &opts).await?;
    tracing::debug!(%addr, "dial-stdio connected");
    let (mut from_daemon, mut to_daemon) = tokio::io::split(io);
    let mut stdin = tokio::io::stdin();
    let mut stdout = tokio::io::stdout();
    let up = async {
        tokio::io::copy(&mut stdin, &mut to_daemon).await?;
        // The client is done sending; the daemon may still answer.
        to_daemon.shutdown().await
    };
    let down = async {
        tokio::io::copy(&mut from_daemon, &mut stdout).await?;
        stdout.flush().await
    };
    tokio::pin!(up, down);
    // The daemon closing ends the bridge; the client closing stdin only
    // half-closes it.
    let mut up_done = false;
    loop {
        tokio::select! {
            r = &mut down => {
                r?;
                return Ok(0);
            }
            r = &mut up, if !up_done => {
                r?;
                up_done = true;
            }
        }
    }
}
