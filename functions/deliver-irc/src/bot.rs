//! One bot connection (the `irc` crate, async on tokio; TLS through rustls, trusting webpki's
//! and the system's roots plus `FMN_IRC_CA_FILE`): connect, log in with SASL PLAIN when a
//! password is set (`CAP REQ sasl`, `AUTHENTICATE PLAIN`, registration held until `903`; `904`
//! is a wrong password), register (wait for `001`, taking `<nick>_` while the nick is in use),
//! ask services whether a nick is registered (`NickServ INFO`), say lines paced by a token
//! bucket, and QUIT. The server handles a client's lines in order,
//! so its answer to our QUIT (`ERROR` and the end of the connection) confirms every line sent
//! before it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use futures::StreamExt;
use irc::client::prelude::{Client, Command, Config, Response};
use irc::proto::CapSubCommand;
use tokio::sync::{mpsc, oneshot, watch};
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
    /// Services refused our login (a wrong password, an unknown account): nothing can be
    /// delivered until an operator fixes the settings.
    #[error("{server} refused the bot's SASL login as {account}: {reason}")]
    LoginRefused {
        server: String,
        account: String,
        reason: String,
    },
    #[error("{0} did not answer whether the nick is registered within {1} s")]
    ServicesTimeout(String, u64),
    #[error("no services to ask whether the nick is registered: {0}")]
    NoServices(String),
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

/// What services said to us (NOTICEs from NickServ), or that there are none (`401`).
#[derive(Debug)]
enum ServicesReply {
    Notice(String),
    Absent(String),
}

/// How registration ended: our nick, or why services refused the login.
type Welcome = Result<String, String>;

pub struct Bot {
    client: Client,
    services: mpsc::UnboundedReceiver<ServicesReply>,
    nickserv: String,
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
            // Without SASL, the crate identifies to NickServ after the MOTD.
            nick_password: settings.password.clone().filter(|_| !settings.sasl),
            server: Some(settings.server.clone()),
            port: Some(settings.port),
            use_tls: Some(settings.tls),
            cert_path: settings.ca_file.clone(),
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
                .map_err(|e| connect_err(fmn_aws::retry::error_chain(&e)))?;
        let sasl = settings
            .password
            .as_ref()
            .filter(|_| settings.sasl)
            .map(|password| sasl_plain(&settings.account, password));
        let client_err = |e: irc::error::Error| BotError::Client(e.to_string());
        if sasl.is_some() {
            // The server holds registration until our CAP END (after 903).
            client
                .send(Command::CAP(
                    None,
                    CapSubCommand::REQ,
                    None,
                    Some("sasl".into()),
                ))
                .map_err(client_err)?;
            client
                .send(Command::NICK(settings.nick.clone()))
                .map_err(client_err)?;
            client
                .send(Command::USER(
                    "fmn".into(),
                    "0".into(),
                    "Fedora Notifications".into(),
                ))
                .map_err(client_err)?;
        } else {
            client.identify().map_err(client_err)?;
        }
        let stream = client.stream().map_err(client_err)?;

        let shared = Arc::new(Mutex::new(Shared::default()));
        let (welcome_tx, welcome_rx) = oneshot::channel();
        let (closed_tx, closed_rx) = watch::channel(false);
        let (services_tx, services_rx) = mpsc::unbounded_channel();
        let reader = tokio::spawn(read_loop(
            stream,
            Reader {
                sender: client.sender(),
                sasl,
                nickserv: settings.nickserv.to_lowercase(),
                services: services_tx,
                shared: Arc::clone(&shared),
                welcome: Some(welcome_tx),
            },
            closed_tx,
        ));
        let mut bot = Bot {
            client,
            services: services_rx,
            nickserv: settings.nickserv.clone(),
            shared,
            closed: closed_rx,
            reader,
            nick: settings.nick.clone(),
        };
        let mut closed = bot.closed.clone();
        tokio::select! {
            welcome = welcome_rx => match welcome {
                Ok(Ok(nick)) => bot.nick = nick,
                Ok(Err(reason)) => {
                    bot.reader.abort();
                    return Err(BotError::LoginRefused {
                        server: settings.server.clone(),
                        account: settings.account.clone(),
                        reason,
                    });
                }
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
        tracing::info!(server = %settings.server, port = settings.port, nick = %bot.nick, tls = settings.tls, sasl = settings.sasl && settings.password.is_some(), "irc bot registered");
        Ok(bot)
    }

    /// Asks services whether `nick` is registered (`INFO <nick>`; Atheme and Anope answer it)
    /// and waits up to `timeout` for the answer about that nick.
    pub async fn nick_registered(
        &mut self,
        nick: &str,
        timeout: Duration,
    ) -> Result<bool, BotError> {
        if let Some(reason) = self.is_closed() {
            return Err(BotError::Closed(reason));
        }
        // Answers to an earlier question that timed out are not about this one.
        while self.services.try_recv().is_ok() {}
        self.client
            .send_privmsg(&self.nickserv, format!("INFO {nick}"))
            .map_err(|e| BotError::Closed(e.to_string()))?;
        let deadline = Instant::now() + timeout;
        loop {
            match tokio::time::timeout_at(deadline, self.services.recv()).await {
                Ok(Some(ServicesReply::Notice(text))) => {
                    if let Some(registered) = fmn_core::irc_line::nickserv_info_verdict(nick, &text)
                    {
                        return Ok(registered);
                    }
                }
                Ok(Some(ServicesReply::Absent(text))) => return Err(BotError::NoServices(text)),
                Ok(None) => return Err(BotError::Closed(self.closed_reason())),
                Err(_) => {
                    return Err(BotError::ServicesTimeout(
                        self.nickserv.clone(),
                        timeout.as_secs(),
                    ))
                }
            }
        }
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

/// `AUTHENTICATE PLAIN`'s answer: base64 of `authzid NUL authcid NUL password`, in lines of at
/// most 400 characters, a full last one followed by `+` (IRCv3 SASL).
fn sasl_plain(account: &str, password: &str) -> Vec<String> {
    let encoded = base64::engine::general_purpose::STANDARD
        .encode(format!("{account}\0{account}\0{password}"));
    let mut chunks: Vec<String> = encoded
        .as_bytes()
        .chunks(400)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect();
    if encoded.len() % 400 == 0 {
        chunks.push("+".into());
    }
    chunks
}

/// What the reader task needs besides the stream.
struct Reader {
    sender: irc::client::Sender,
    /// The SASL PLAIN answer, when logging in with SASL.
    sasl: Option<Vec<String>>,
    /// Lowercase.
    nickserv: String,
    services: mpsc::UnboundedSender<ServicesReply>,
    shared: Arc<Mutex<Shared>>,
    welcome: Option<oneshot::Sender<Welcome>>,
}

impl Reader {
    fn welcome(&mut self, outcome: Welcome) {
        if let Some(tx) = self.welcome.take() {
            let _ = tx.send(outcome);
        }
    }

    /// Steps of the SASL exchange; true when `msg` was one.
    fn sasl_step(&mut self, command: &Command) -> bool {
        let Some(answer) = &self.sasl else {
            return false;
        };
        let sent = match command {
            Command::CAP(_, CapSubCommand::ACK, ..) => {
                self.sender.send(Command::AUTHENTICATE("PLAIN".into()))
            }
            Command::CAP(_, CapSubCommand::NAK, ..) => {
                self.welcome(Err("the server does not offer SASL (CAP NAK)".into()));
                Ok(())
            }
            Command::AUTHENTICATE(challenge) if challenge == "+" => answer
                .iter()
                .try_for_each(|chunk| self.sender.send(Command::AUTHENTICATE(chunk.clone()))),
            Command::Response(Response::RPL_SASLSUCCESS, _) => {
                self.sender
                    .send(Command::CAP(None, CapSubCommand::END, None, None))
            }
            Command::Response(
                resp @ (Response::ERR_SASLFAIL
                | Response::ERR_SASLTOOLONG
                | Response::ERR_SASLABORT
                | Response::ERR_NICKLOCKED),
                args,
            ) => {
                let text = args.last().cloned().unwrap_or_default();
                tracing::error!(?resp, %text, "SASL login refused");
                self.welcome(Err(format!("{resp:?}: {text}")));
                Ok(())
            }
            _ => return false,
        };
        if let Err(e) = sent {
            tracing::warn!(error = %e, "could not answer the SASL exchange");
        }
        true
    }
}

/// Drives the connection (the `irc` crate writes our queued lines while its stream is polled)
/// and notes what matters.
async fn read_loop(
    mut stream: irc::client::ClientStream,
    mut reader: Reader,
    closed: watch::Sender<bool>,
) {
    let shared = Arc::clone(&reader.shared);
    while let Some(item) = stream.next().await {
        let msg = match item {
            Ok(msg) => msg,
            Err(e) => {
                let mut s = shared.lock().expect("bot state lock");
                s.closed_reason.get_or_insert_with(|| {
                    format!("read error: {}", fmn_aws::retry::error_chain(&e))
                });
                // After the server's goodbye a reset changes nothing; before, lines may be lost.
                if !s.goodbye {
                    s.lost = true;
                }
                break;
            }
        };
        if reader.sasl_step(&msg.command) {
            continue;
        }
        let from_nickserv = msg
            .source_nickname()
            .is_some_and(|n| n.eq_ignore_ascii_case(&reader.nickserv));
        let mut s = shared.lock().expect("bot state lock");
        match msg.command {
            Command::Response(Response::RPL_WELCOME, ref args) => {
                reader.welcome(Ok(args.first().cloned().unwrap_or_default()));
            }
            Command::Response(resp, ref args) if resp.is_error() => match resp {
                // The crate answers these by trying the next nick.
                Response::ERR_NICKNAMEINUSE | Response::ERR_ERRONEOUSNICKNAME => {}
                _ => {
                    let target = args.get(1).cloned().unwrap_or_default();
                    let text = args.last().cloned().unwrap_or_default();
                    if target.eq_ignore_ascii_case(&reader.nickserv) {
                        let _ = reader
                            .services
                            .send(ServicesReply::Absent(format!("{resp:?}: {text}")));
                        continue;
                    }
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
            Command::NOTICE(_, ref text) if from_nickserv => {
                tracing::debug!(%text, "services notice");
                let _ = reader.services.send(ServicesReply::Notice(text.clone()));
            }
            Command::NOTICE(_, ref text) => {
                tracing::debug!(%text, "irc notice");
            }
            _ => {}
        }
    }
    let _ = closed.send(true);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alternative_nicks_append_underscores() {
        assert_eq!(alt_nicks("fmn")[..2], ["fmn_", "fmn__"]);
    }

    #[test]
    fn the_sasl_plain_answer_is_base64_in_400_character_lines() {
        // RFC 4616's example: authzid and authcid the same.
        assert_eq!(
            sasl_plain("tim", "tanstaaftanstaaf"),
            ["dGltAHRpbQB0YW5zdGFhZnRhbnN0YWFm"]
        );
        // 300 bytes encode to exactly 400 characters: a `+` ends the answer.
        let exact = sasl_plain("a", &"p".repeat(300 - 4));
        assert_eq!(exact.len(), 2);
        assert_eq!(exact[0].len(), 400);
        assert_eq!(exact[1], "+");
        let long = sasl_plain("a", &"p".repeat(400));
        assert_eq!(long.iter().map(String::len).collect::<Vec<_>>(), [400, 140]);
    }
}
