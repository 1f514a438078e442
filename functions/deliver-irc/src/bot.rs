//! One bot connection (the `irc` crate, async on tokio): connect, register (wait for `001`,
//! taking `<nick>_` while the nick is in use), identify to NickServ when a password is set,
//! say lines paced by a token bucket, and QUIT. The server handles a client's lines in order,
//! so its answer to our QUIT (`ERROR` and the end of the connection) confirms every line sent
//! before it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use irc::client::prelude::{Client, Command, Config, Response};
use tokio::sync::{oneshot, watch};
use tokio::time::Instant;

use crate::settings::IrcSettings;

#[derive(Debug, thiserror::Error)]
pub enum BotError {
    #[error("cannot connect to {server}:{port}: {reason}")]
    Connect {
        server: String,
        port: u16,
        reason: String,
    },
    #[error("{server}:{port} did not register us within {secs} s")]
    RegistrationTimeout {
        server: String,
        port: u16,
        secs: u64,
    },
    #[error("the IRC connection was closed: {0}")]
    Closed(String),
    #[error("the server did not confirm our QUIT within {0} s")]
    QuitTimeout(u64),
    #[error("irc client: {0}")]
    Client(String),
}

/// What the reader task learns from the server.
#[derive(Debug, Default)]
struct Shared {
    /// Targets the server refused a line to (lowercase nick → the server's words).
    refused: HashMap<String, String>,
    /// Why the connection ended (an `ERROR` line, a read error).
    closed_reason: Option<String>,
    /// We sent QUIT: an `ERROR` now is the server's goodbye.
    quitting: bool,
    /// The server dropped us before our QUIT (`ERROR`, `KILL`, a read error).
    lost: bool,
    /// The server answered our QUIT with `ERROR`: it handled every line before.
    goodbye: bool,
}

pub struct Bot {
    client: Client,
    shared: Arc<Mutex<Shared>>,
    closed: watch::Receiver<bool>,
    reader: tokio::task::JoinHandle<()>,
    /// The nick the server registered us as.
    pub nick: String,
}

/// Nicks to try while ours is in use: `nick_`, `nick__`, …
fn alt_nicks(nick: &str) -> Vec<String> {
    (1..=4)
        .map(|n| format!("{nick}{}", "_".repeat(n)))
        .collect()
}

impl Bot {
    /// Connects and waits for the server's welcome (`001`).
    pub async fn connect(settings: &IrcSettings) -> Result<Bot, BotError> {
        let config = Config {
            nickname: Some(settings.nick.clone()),
            alt_nicks: alt_nicks(&settings.nick),
            username: Some("fmn".into()),
            realname: Some("Fedora Notifications".into()),
            nick_password: settings.password.clone(),
            server: Some(settings.server.clone()),
            port: Some(settings.port),
            use_tls: Some(settings.tls),
            // Our own PINGs only matter for a dead connection in a long batch.
            ping_time: Some(60),
            ping_timeout: Some(30),
            version: Some("fmn".into()),
            ..Config::default()
        };
        let connect_err = |reason: String| BotError::Connect {
            server: settings.server.clone(),
            port: settings.port,
            reason,
        };
        let mut client =
            tokio::time::timeout(settings.connect_timeout, Client::from_config(config))
                .await
                .map_err(|_| connect_err("timed out".into()))?
                .map_err(|e| connect_err(error_chain(&e)))?;
        client
            .identify()
            .map_err(|e| BotError::Client(e.to_string()))?;
        let stream = client
            .stream()
            .map_err(|e| BotError::Client(e.to_string()))?;

        let shared = Arc::new(Mutex::new(Shared::default()));
        let (welcome_tx, welcome_rx) = oneshot::channel();
        let (closed_tx, closed_rx) = watch::channel(false);
        let reader = tokio::spawn(read_loop(
            stream,
            Arc::clone(&shared),
            welcome_tx,
            closed_tx,
        ));
        let mut bot = Bot {
            client,
            shared,
            closed: closed_rx,
            reader,
            nick: settings.nick.clone(),
        };
        let mut closed = bot.closed.clone();
        tokio::select! {
            welcome = welcome_rx => match welcome {
                Ok(nick) => bot.nick = nick,
                Err(_) => return Err(BotError::Closed(bot.closed_reason())),
            },
            _ = closed.wait_for(|c| *c) => return Err(BotError::Closed(bot.closed_reason())),
            _ = tokio::time::sleep(settings.connect_timeout) => {
                bot.reader.abort();
                return Err(BotError::RegistrationTimeout {
                    server: settings.server.clone(),
                    port: settings.port,
                    secs: settings.connect_timeout.as_secs(),
                });
            }
        }
        if bot.nick != settings.nick {
            tracing::warn!(wanted = %settings.nick, got = %bot.nick, "nick in use; registered under another");
        }
        tracing::info!(server = %settings.server, port = settings.port, nick = %bot.nick, tls = settings.tls, "irc bot registered");
        Ok(bot)
    }

    fn closed_reason(&self) -> String {
        self.shared
            .lock()
            .expect("bot state lock")
            .closed_reason
            .clone()
            .unwrap_or_else(|| "connection closed".into())
    }

    /// `Some(reason)` once the connection is gone.
    pub fn is_closed(&self) -> Option<String> {
        (*self.closed.borrow()).then(|| self.closed_reason())
    }

    /// Queues one PRIVMSG (written by the connection's task at once).
    pub fn privmsg(&self, nick: &str, text: &str) -> Result<(), BotError> {
        if let Some(reason) = self.is_closed() {
            return Err(BotError::Closed(reason));
        }
        self.client
            .send_privmsg(nick, text)
            .map_err(|e| BotError::Closed(e.to_string()))
    }

    /// Sends QUIT and waits for the server to close the connection, which confirms that it
    /// handled every line before. Returns the targets the server refused lines to.
    pub async fn quit(self, timeout: Duration) -> Result<HashMap<String, String>, BotError> {
        if let Some(reason) = self.is_closed() {
            return Err(BotError::Closed(reason));
        }
        self.shared.lock().expect("bot state lock").quitting = true;
        if let Err(e) = self.client.send_quit("fmn: batch delivered") {
            return Err(BotError::Closed(e.to_string()));
        }
        let mut closed = self.closed.clone();
        let deadline = Instant::now() + timeout;
        let done = tokio::time::timeout_at(deadline, closed.wait_for(|c| *c)).await;
        self.reader.abort();
        let shared = std::mem::take(&mut *self.shared.lock().expect("bot state lock"));
        match done {
            // The server's goodbye (ERROR) or the end of the stream after our QUIT.
            Ok(_) if !shared.lost => Ok(shared.refused),
            Ok(_) => Err(BotError::Closed(
                shared
                    .closed_reason
                    .unwrap_or_else(|| "connection closed".into()),
            )),
            Err(_) => Err(BotError::QuitTimeout(timeout.as_secs())),
        }
    }
}

/// Drives the connection (the `irc` crate writes our queued lines while its stream is polled)
/// and notes what matters.
async fn read_loop(
    mut stream: irc::client::ClientStream,
    shared: Arc<Mutex<Shared>>,
    welcome: oneshot::Sender<String>,
    closed: watch::Sender<bool>,
) {
    let mut welcome = Some(welcome);
    while let Some(item) = stream.next().await {
        let msg = match item {
            Ok(msg) => msg,
            Err(e) => {
                let mut s = shared.lock().expect("bot state lock");
                s.closed_reason
                    .get_or_insert_with(|| format!("read error: {}", error_chain(&e)));
                // After the server's goodbye a reset changes nothing; before, lines may be lost.
                if !s.goodbye {
                    s.lost = true;
                }
                break;
            }
        };
        let mut s = shared.lock().expect("bot state lock");
        match msg.command {
            Command::Response(Response::RPL_WELCOME, ref args) => {
                if let Some(tx) = welcome.take() {
                    let _ = tx.send(args.first().cloned().unwrap_or_default());
                }
            }
            Command::Response(resp, ref args) if resp.is_error() => match resp {
                // The crate answers these by trying the next nick.
                Response::ERR_NICKNAMEINUSE | Response::ERR_ERRONEOUSNICKNAME => {}
                _ => {
                    let target = args.get(1).cloned().unwrap_or_default();
                    let text = args.last().cloned().unwrap_or_default();
                    tracing::warn!(?resp, %target, %text, "irc server refused a command");
                    s.refused
                        .insert(target.to_lowercase(), format!("{resp:?}: {text}"));
                }
            },
            Command::ERROR(ref reason) => {
                if s.quitting {
                    s.goodbye = true;
                } else {
                    tracing::error!(%reason, "irc server closed the connection");
                    s.lost = true;
                }
                s.closed_reason.get_or_insert_with(|| reason.clone());
            }
            Command::KILL(_, ref reason) => {
                tracing::error!(%reason, "the bot was killed");
                s.lost = true;
                s.closed_reason
                    .get_or_insert_with(|| format!("killed: {reason}"));
            }
            Command::NOTICE(_, ref text) => {
                tracing::debug!(%text, "irc notice");
            }
            _ => {}
        }
    }
    let _ = closed.send(true);
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alternative_nicks_append_underscores() {
        assert_eq!(alt_nicks("fmn")[..2], ["fmn_", "fmn__"]);
    }
}
