//! The in-process copy methods, each run as its own measured process.

use anyhow::{Context, bail};
use futures_util::{SinkExt, StreamExt};

use crate::{flag, flags};

/// `copyman-bench copy …`: one copy, then one line `rows=N` on stdout.
pub(crate) fn run_copy(args: &[String]) -> anyhow::Result<()> {
    let method: String = flag(args, "--method")?.context("--method")?;
    let source: String = flag(args, "--source")?.context("--source")?;
    let send: String = flag(args, "--send")?.context("--send")?;
    let receive: String = flag(args, "--receive")?.context("--receive")?;
    let dests = flags(args, "--dest");
    if dests.is_empty() {
        bail!("at least one --dest");
    }
    let rows = match method.as_str() {
        "sync" => copyman_sync(&source, &send, &dests, &receive)?,
        "async" => copyman_async(&source, &send, &dests, &receive)?,
        "tokio-postgres" => tokio_postgres_loop(&source, &send, &dests, &receive)?,
        other => bail!("unknown method {other}"),
    };
    println!("rows={rows}");
    Ok(())
}

/// copyman-sync's fast path: raw sessions, re-blocked frames, one write per destination per read.
fn copyman_sync(source: &str, send: &str, dests: &[String], receive: &str) -> anyhow::Result<u64> {
    use copyman_sync::{Connection, Receiver, StatementProducer, StatementReceiver, transfer};
    let mut src = Connection::connect_str(source)?;
    let mut conns = dests
        .iter()
        .map(|d| Connection::connect_str(d))
        .collect::<Result<Vec<_>, _>>()?;
    let receivers: Vec<Box<dyn Receiver + '_>> = conns
        .iter_mut()
        .map(|c| Box::new(StatementReceiver::new(c, receive)) as Box<dyn Receiver + '_>)
        .collect();
    let (rows, _) = transfer(StatementProducer::new(&mut src, send), receivers)?;
    Ok(rows)
}

/// copyman-async: the same fast path, with concurrent writes overlapping the next read.
fn copyman_async(source: &str, send: &str, dests: &[String], receive: &str) -> anyhow::Result<u64> {
    use copyman_async::{Connection, Receiver, StatementProducer, StatementReceiver, transfer};
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let mut src = Connection::connect_str(source).await?;
        let mut conns = Vec::new();
        for d in dests {
            conns.push(Connection::connect_str(d).await?);
        }
        let receivers: Vec<Box<dyn Receiver + '_>> = conns
            .iter_mut()
            .map(|c| Box::new(StatementReceiver::new(c, receive)) as Box<dyn Receiver + '_>)
            .collect();
        let (rows, _) = transfer(StatementProducer::new(&mut src, send), receivers).await?;
        Ok(rows)
    })
}

/// What a Rust developer would write without copyman: tokio-postgres `copy_out` into every
/// destination's `copy_in` sink, chunk by chunk.
fn tokio_postgres_loop(
    source: &str,
    send: &str,
    dests: &[String],
    receive: &str,
) -> anyhow::Result<u64> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let connect = |conninfo: String| async move {
            let (client, connection) =
                tokio_postgres::connect(&conninfo, tokio_postgres::NoTls).await?;
            tokio::spawn(connection);
            Ok::<_, tokio_postgres::Error>(client)
        };
        let src = connect(source.to_owned()).await?;
        let mut clients = Vec::new();
        for d in dests {
            clients.push(connect(d.clone()).await?);
        }
        let mut sinks = Vec::new();
        for c in &clients {
            sinks.push(Box::pin(c.copy_in::<_, bytes::Bytes>(receive).await?));
        }
        let stream = src.copy_out(send).await?;
        let mut stream = std::pin::pin!(stream);
        while let Some(chunk) = stream.next().await {
            let chunk = chunk?;
            for sink in &mut sinks {
                // `feed` lets the sink batch rows; `send` would flush every row.
                sink.feed(chunk.clone()).await?;
            }
        }
        let mut rows = 0;
        for sink in &mut sinks {
            rows = sink.as_mut().finish().await?;
        }
        Ok(rows)
    })
}
