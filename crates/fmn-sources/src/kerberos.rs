//! Kerberos for FASJSON's `Authorization: Negotiate`, as FMN 3.x authenticates: the sync
//! function's principal gets a ticket-granting ticket with the long-term key of its keytab (AS
//! exchange with encrypted-timestamp pre-authentication), then a ticket for FASJSON's
//! `HTTP/host` service (TGS exchange); each request carries a fresh AP-REQ wrapped as a
//! GSS-API Kerberos token inside a SPNEGO NegTokenInit, what curl and browsers send.
//!
//! Pure Rust (picky-krb's messages and AES enctypes) rather than MIT krb5 through GSSAPI
//! bindings: the Lambda runtime (provided.al2023) has no libkrb5, and the zig-linked Lambda
//! build would otherwise need MIT's headers, libclang for bindgen and a layer carrying the
//! shared libraries. The KDC is spoken to over TCP (RFC 4120 §7.2.2).

use std::time::Duration;

use base64::Engine;
use picky_asn1::bit_string::BitString;
use picky_asn1::date::GeneralizedTime;
use picky_asn1::restricted_string::Ia5String;
use picky_asn1::wrapper::{
    Asn1SequenceOf, ExplicitContextTag0, ExplicitContextTag1, ExplicitContextTag2,
    ExplicitContextTag3, ExplicitContextTag4, ExplicitContextTag5, ExplicitContextTag7,
    ExplicitContextTag8, IntegerAsn1, OctetStringAsn1, Optional,
};
use picky_krb::constants::key_usages;
use picky_krb::constants::types::{
    AP_REQ_MSG_TYPE, AS_REQ_MSG_TYPE, NT_PRINCIPAL, NT_SRV_INST, PA_ENC_TIMESTAMP, PA_TGS_REQ_TYPE,
    TGS_REQ_MSG_TYPE,
};
use picky_krb::crypto::{ChecksumSuite, CipherSuite};
use picky_krb::data_types::{
    Authenticator, AuthenticatorInner, Checksum, EncryptedData, KerberosFlags, KerberosStringAsn1,
    KerberosTime, PaData, PaEncTsEnc, PrincipalName, Ticket,
};
use picky_krb::messages::{
    ApReq, ApReqInner, AsRep, AsReq, EncAsRepPart, EncTgsRepPart, KdcRep, KdcReq, KdcReqBody,
    KrbError, TgsRep, TgsReq,
};
use rand::Rng;
use time::OffsetDateTime;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::Mutex;

use fmn_aws::retry::{Classify, ErrorClass};
use fmn_aws::vars::{ConfigError, Vars};

pub const PRINCIPAL_VAR: &str = "FMN_FASJSON_PRINCIPAL";
pub const KEYTAB_VAR: &str = "FMN_FASJSON_KEYTAB";
pub const KDC_VAR: &str = "FMN_FASJSON_KDC";
pub const SERVICE_VAR: &str = "FMN_FASJSON_SERVICE";

/// Tickets asked for last this long (the KDC may give less).
const TICKET_LIFETIME: time::Duration = time::Duration::hours(10);
/// A ticket this close to its end is renewed before use.
const RENEW_MARGIN: time::Duration = time::Duration::minutes(5);
/// A KDC answer larger than this is not one.
const MAX_KDC_REPLY: usize = 1 << 20;

/// How the FASJSON client authenticates with Kerberos (all four settings, or none).
#[derive(Clone, PartialEq, Eq)]
pub struct KerberosSettings {
    /// `FMN_FASJSON_PRINCIPAL`: the client principal, `name[/instance]@REALM`.
    pub principal: String,
    /// `FMN_FASJSON_KEYTAB` (a secret: base64 of the keytab file, from SSM on AWS).
    pub keytab: Vec<u8>,
    /// `FMN_FASJSON_KDC`: the realm's KDC, `host:port` (TCP), or the URL of a KDC proxy
    /// (MS-KKDCP over HTTPS, as FreeIPA serves at `https://<ipa>/KdcProxy`): the way to reach
    /// a KDC that is not open to the internet, such as Fedora's, from AWS.
    pub kdc: String,
    /// `FMN_FASJSON_SERVICE`: FASJSON's service principal, default `HTTP/<FASJSON's host>`.
    pub service: String,
}

impl std::fmt::Debug for KerberosSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KerberosSettings")
            .field("principal", &self.principal)
            .field("keytab", &format_args!("<{} bytes>", self.keytab.len()))
            .field("kdc", &self.kdc)
            .field("service", &self.service)
            .finish()
    }
}

impl KerberosSettings {
    /// None when `FMN_FASJSON_PRINCIPAL` is unset (FASJSON asked without authentication, as the
    /// stand-in and a local FASJSON allow); then the keytab and KDC are required.
    pub fn from_vars(vars: &Vars<'_>, fasjson_url: &str) -> Result<Option<Self>, ConfigError> {
        let Some(principal) = vars.text(PRINCIPAL_VAR) else {
            return Ok(None);
        };
        if split_principal(&principal).is_none() {
            return Err(ConfigError {
                name: PRINCIPAL_VAR.into(),
                value: principal,
                expected: "a principal `name[/instance]@REALM`",
            });
        }
        let missing = |name: &str| ConfigError {
            name: name.into(),
            value: String::new(),
            expected: "a value (required when FMN_FASJSON_PRINCIPAL is set)",
        };
        let keytab_b64 = vars.text(KEYTAB_VAR).ok_or_else(|| missing(KEYTAB_VAR))?;
        let keytab = base64::engine::general_purpose::STANDARD
            .decode(keytab_b64.split_whitespace().collect::<String>())
            .map_err(|_| ConfigError {
                name: KEYTAB_VAR.into(),
                value: "(hidden)".into(),
                expected: "a keytab file in base64 (`base64 -w0 fmn.keytab`)",
            })?;
        let kdc = vars.text(KDC_VAR).ok_or_else(|| missing(KDC_VAR))?;
        let proxy = kdc.starts_with("https://") || kdc.starts_with("http://");
        if !proxy
            && kdc
                .rsplit_once(':')
                .is_none_or(|(_, p)| p.parse::<u16>().is_err())
        {
            return Err(ConfigError {
                name: KDC_VAR.into(),
                value: kdc,
                expected: "host:port, or a KDC proxy's https:// URL",
            });
        }
        let host = fasjson_url
            .split("://")
            .nth(1)
            .unwrap_or(fasjson_url)
            .split(['/', ':'])
            .next()
            .unwrap_or_default();
        let service = vars.text_or(SERVICE_VAR, &format!("HTTP/{host}"));
        Ok(Some(Self {
            principal,
            keytab,
            kdc,
            service,
        }))
    }
}

/// Why no Negotiate token could be made.
#[derive(Debug, thiserror::Error)]
pub enum KerberosError {
    /// The keytab cannot be read, or holds no AES key of the principal.
    #[error("Kerberos: keytab for {principal}: {detail}")]
    Keytab { principal: String, detail: String },
    /// The KDC did not answer (refused, reset, timed out).
    #[error("Kerberos: KDC {kdc} unreachable: {detail}")]
    KdcUnreachable { kdc: String, detail: String },
    /// The KDC answered with a KRB-ERROR.
    #[error(
        "Kerberos: KDC {kdc} refused the {step} request for {principal}: {name} ({code}){hint}"
    )]
    Kdc {
        kdc: String,
        step: &'static str,
        principal: String,
        code: u32,
        name: &'static str,
        hint: &'static str,
    },
    /// An answer that is not what RFC 4120 says, or that our key cannot read.
    #[error("Kerberos: {step} exchange with {kdc}: {detail}")]
    Protocol {
        kdc: String,
        step: &'static str,
        detail: String,
    },
}

impl Classify for KerberosError {
    fn class(&self) -> ErrorClass {
        match self {
            Self::KdcUnreachable { .. } => ErrorClass::Retryable,
            // Clock skew, a KDC busy or its database locked may pass; a wrong key, an unknown
            // principal or an expired account will not until someone acts.
            Self::Kdc {
                code: 29 | 37 | 52, ..
            } => ErrorClass::Retryable,
            Self::Kdc { .. } | Self::Keytab { .. } | Self::Protocol { .. } => ErrorClass::Permanent,
        }
    }
}

/// RFC 4120's names of the errors a client meets, with what to do about the usual ones.
fn kdc_error_name(code: u32) -> (&'static str, &'static str) {
    match code {
        6 => (
            "KDC_ERR_C_PRINCIPAL_UNKNOWN",
            ": the client principal does not exist in the realm",
        ),
        7 => (
            "KDC_ERR_S_PRINCIPAL_UNKNOWN",
            ": no such service principal (see FMN_FASJSON_SERVICE)",
        ),
        14 => (
            "KDC_ERR_ETYPE_NOSUPP",
            ": the keytab's key type is not one the KDC has for the principal",
        ),
        18 => (
            "KDC_ERR_CLIENT_REVOKED",
            ": the principal is locked or disabled",
        ),
        23 => ("KDC_ERR_KEY_EXPIRED", ": the principal's key has expired"),
        24 => (
            "KDC_ERR_PREAUTH_FAILED",
            ": the keytab's key is wrong (a stale keytab after a key change?)",
        ),
        29 => ("KDC_ERR_SVC_UNAVAILABLE", ""),
        31 => ("KRB_AP_ERR_BAD_INTEGRITY", ": the keytab's key is wrong"),
        37 => (
            "KRB_AP_ERR_SKEW",
            ": clocks differ by more than the KDC allows",
        ),
        41 => ("KRB_AP_ERR_MODIFIED", ""),
        52 => ("KRB_ERR_RESPONSE_TOO_BIG", ""),
        60 => ("KRB_ERR_GENERIC", ""),
        _ => ("KDC error", ""),
    }
}

/// A principal's name components and realm.
fn split_principal(principal: &str) -> Option<(Vec<String>, String)> {
    let (name, realm) = principal.rsplit_once('@')?;
    if name.is_empty() || realm.is_empty() || name.split('/').any(str::is_empty) {
        return None;
    }
    Some((
        name.split('/').map(str::to_string).collect(),
        realm.to_string(),
    ))
}

/// One long-term key of a keytab.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeytabEntry {
    pub realm: String,
    pub components: Vec<String>,
    pub kvno: u32,
    pub etype: i32,
    pub key: Vec<u8>,
}

/// Reads MIT's keytab file format (version 0x502; 0x501 differs only in counting the realm
/// among the components and having no name type).
pub fn parse_keytab(bytes: &[u8]) -> Result<Vec<KeytabEntry>, String> {
    struct Reader<'a>(&'a [u8]);
    impl<'a> Reader<'a> {
        fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
            if self.0.len() < n {
                return Err("truncated".into());
            }
            let (head, rest) = self.0.split_at(n);
            self.0 = rest;
            Ok(head)
        }
        fn u8(&mut self) -> Result<u8, String> {
            Ok(self.take(1)?[0])
        }
        fn u16(&mut self) -> Result<u16, String> {
            Ok(u16::from_be_bytes(self.take(2)?.try_into().unwrap()))
        }
        fn u32(&mut self) -> Result<u32, String> {
            Ok(u32::from_be_bytes(self.take(4)?.try_into().unwrap()))
        }
        fn text(&mut self) -> Result<String, String> {
            let n = self.u16()? as usize;
            String::from_utf8(self.take(n)?.to_vec()).map_err(|_| "a name is not UTF-8".into())
        }
    }
    let mut r = Reader(bytes);
    let version = r.u16().map_err(|_| "empty file".to_string())?;
    if version != 0x0502 && version != 0x0501 {
        return Err(format!(
            "not a keytab (starts with {version:#06x}, expected 0x0502)"
        ));
    }
    let mut entries = Vec::new();
    while !r.0.is_empty() {
        let size = r.u32()? as i32;
        if size < 0 {
            // A hole left by a removed entry.
            r.take(size.unsigned_abs() as usize)?;
            continue;
        }
        let mut e = Reader(r.take(size as usize)?);
        let mut count = e.u16()? as usize;
        if version == 0x0501 {
            count = count.saturating_sub(1);
        }
        let realm = e.text()?;
        let components = (0..count)
            .map(|_| e.text())
            .collect::<Result<Vec<_>, _>>()?;
        if version == 0x0502 {
            e.u32()?; // name type
        }
        e.u32()?; // timestamp
        let mut kvno = u32::from(e.u8()?);
        let etype = i32::from(e.u16()?);
        let key_len = e.u16()? as usize;
        let key = e.take(key_len)?.to_vec();
        if e.0.len() >= 4 {
            let long = e.u32()?;
            if long != 0 {
                kvno = long;
            }
        }
        entries.push(KeytabEntry {
            realm,
            components,
            kvno,
            etype,
            key,
        });
    }
    Ok(entries)
}

/// The keytab's best key for the principal: the newest version, AES-256 before AES-128.
fn choose_key(entries: &[KeytabEntry], principal: &str) -> Result<(CipherSuite, Vec<u8>), String> {
    let (components, realm) =
        split_principal(principal).ok_or_else(|| "not a principal".to_string())?;
    let mine: Vec<&KeytabEntry> = entries
        .iter()
        .filter(|e| e.realm == realm && e.components == components)
        .collect();
    if mine.is_empty() {
        let held: Vec<String> = entries
            .iter()
            .map(|e| format!("{}@{}", e.components.join("/"), e.realm))
            .collect();
        return Err(format!(
            "no key of this principal in the keytab (it holds: {})",
            if held.is_empty() {
                "nothing".into()
            } else {
                held.join(", ")
            }
        ));
    }
    let rank = |etype: i32| match etype {
        18 => Some(2),
        17 => Some(1),
        _ => None,
    };
    mine.iter()
        .filter_map(|e| rank(e.etype).map(|r| ((e.kvno, r), e)))
        .max_by_key(|(k, _)| *k)
        .map(|(_, e)| {
            let suite = if e.etype == 18 {
                CipherSuite::Aes256CtsHmacSha196
            } else {
                CipherSuite::Aes128CtsHmacSha196
            };
            (suite, e.key.clone())
        })
        .ok_or_else(|| {
            "the keytab has no AES key (aes256-cts or aes128-cts) of this principal".into()
        })
}

/// A service ticket and what is needed to present it.
struct ServiceTicket {
    ticket: Ticket,
    session_key: Vec<u8>,
    suite: CipherSuite,
    crealm: KerberosStringAsn1,
    cname: PrincipalName,
    end: OffsetDateTime,
}

/// Makes `Authorization: Negotiate` values for one service, keeping its ticket until close to
/// its end.
pub struct Negotiator {
    settings: KerberosSettings,
    connect_timeout: Duration,
    ticket: Mutex<Option<ServiceTicket>>,
    /// For a KDC proxy (`kdc` is a URL).
    http: reqwest::Client,
}

impl std::fmt::Debug for Negotiator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Negotiator")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

type KrbResult<T> = std::result::Result<T, KerberosError>;

impl Negotiator {
    pub fn new(settings: KerberosSettings, timeout: Duration) -> Self {
        Self {
            settings,
            connect_timeout: timeout,
            ticket: Mutex::new(None),
            http: reqwest::Client::builder()
                .timeout(timeout)
                .build()
                .expect("a client with rustls and a timeout builds"),
        }
    }

    /// The `Authorization` header value for the next request.
    pub async fn authorization(&self) -> KrbResult<String> {
        let mut slot = self.ticket.lock().await;
        let fresh = slot
            .as_ref()
            .is_some_and(|t| t.end - RENEW_MARGIN > OffsetDateTime::now_utc());
        if !fresh {
            *slot = Some(self.service_ticket().await?);
        }
        let token = self.ap_req_token(slot.as_ref().expect("a ticket was just set"))?;
        Ok(format!(
            "Negotiate {}",
            base64::engine::general_purpose::STANDARD.encode(token)
        ))
    }

    /// Forgets the ticket (the service refused it: its key may have changed).
    pub async fn forget_ticket(&self) {
        *self.ticket.lock().await = None;
    }

    fn protocol(&self, step: &'static str, detail: impl std::fmt::Display) -> KerberosError {
        KerberosError::Protocol {
            kdc: self.settings.kdc.clone(),
            step,
            detail: detail.to_string(),
        }
    }

    /// AS then TGS exchange.
    async fn service_ticket(&self) -> KrbResult<ServiceTicket> {
        let s = &self.settings;
        let keytab_error = |detail: String| KerberosError::Keytab {
            principal: s.principal.clone(),
            detail,
        };
        let entries = parse_keytab(&s.keytab).map_err(keytab_error)?;
        let (suite, key) = choose_key(&entries, &s.principal).map_err(keytab_error)?;
        let (client, realm) = split_principal(&s.principal).expect("checked by the settings");
        let service: Vec<String> = s.service.split('/').map(str::to_string).collect();

        // AS exchange: a TGT, proving the key with an encrypted timestamp.
        let now = OffsetDateTime::now_utc();
        let timestamp = PaEncTsEnc {
            patimestamp: ExplicitContextTag0::from(kerberos_time(now)),
            pausec: Optional::from(Some(ExplicitContextTag1::from(unsigned(now.microsecond())))),
        };
        let encrypted_timestamp = suite
            .cipher()
            .encrypt(&key, key_usages::AS_REQ_TIMESTAMP, &der(&timestamp)?)
            .map_err(|e| self.protocol("AS", e))?;
        let pa_timestamp = PaData {
            padata_type: ExplicitContextTag1::from(IntegerAsn1::from(PA_ENC_TIMESTAMP.to_vec())),
            padata_data: ExplicitContextTag2::from(OctetStringAsn1::from(der(&encrypted_data(
                &suite,
                encrypted_timestamp,
            ))?)),
        };
        let nonce = rand::rng().random::<u32>() >> 1;
        let body = request_body(
            Some(principal_name(NT_PRINCIPAL, &client)?),
            &realm,
            principal_name(NT_SRV_INST, &["krbtgt".to_string(), realm.clone()])?,
            nonce,
            std::slice::from_ref(&suite),
            now,
        )?;
        let as_req = AsReq::from(KdcReq {
            pvno: ExplicitContextTag1::from(IntegerAsn1::from(vec![5])),
            msg_type: ExplicitContextTag2::from(IntegerAsn1::from(vec![AS_REQ_MSG_TYPE])),
            padata: Optional::from(Some(ExplicitContextTag3::from(Asn1SequenceOf::from(vec![
                pa_timestamp,
            ])))),
            req_body: ExplicitContextTag4::from(body),
        });
        let reply = self.exchange("AS", &der(&as_req)?).await?;
        let as_rep: AsRep = picky_asn1_der::from_bytes(&reply)
            .map_err(|e| self.protocol("AS", format!("an unreadable AS-REP: {e}")))?;
        let tgt = self.read_reply("AS", &as_rep.0, &suite, &key, key_usages::AS_REP_ENC, nonce)?;

        // TGS exchange: a ticket for the service, with the TGT.
        let now = OffsetDateTime::now_utc();
        let nonce = rand::rng().random::<u32>() >> 1;
        let body = request_body(
            None,
            &realm,
            principal_name(NT_SRV_INST, &service)?,
            nonce,
            &[
                CipherSuite::Aes256CtsHmacSha196,
                CipherSuite::Aes128CtsHmacSha196,
            ],
            now,
        )?;
        let body_checksum = checksum_suite(&tgt.suite)
            .hasher()
            .checksum(
                &tgt.session_key,
                key_usages::TGS_REQ_PA_DATA_AP_REQ_AUTHENTICATOR_CKSUM,
                &der(&body)?,
            )
            .map_err(|e| self.protocol("TGS", e))?;
        let checksum = Checksum {
            cksumtype: ExplicitContextTag0::from(IntegerAsn1::from_bytes_be_unsigned(
                u32::from(checksum_suite(&tgt.suite)).to_be_bytes().to_vec(),
            )),
            checksum: ExplicitContextTag1::from(OctetStringAsn1::from(body_checksum)),
        };
        let ap_req = self.ap_req(
            &tgt,
            checksum,
            key_usages::TGS_REQ_PA_DATA_AP_REQ_AUTHENTICATOR,
            "TGS",
        )?;
        let tgs_req = TgsReq::from(KdcReq {
            pvno: ExplicitContextTag1::from(IntegerAsn1::from(vec![5])),
            msg_type: ExplicitContextTag2::from(IntegerAsn1::from(vec![TGS_REQ_MSG_TYPE])),
            padata: Optional::from(Some(ExplicitContextTag3::from(Asn1SequenceOf::from(vec![
                PaData {
                    padata_type: ExplicitContextTag1::from(IntegerAsn1::from(
                        PA_TGS_REQ_TYPE.to_vec(),
                    )),
                    padata_data: ExplicitContextTag2::from(OctetStringAsn1::from(der(&ap_req)?)),
                },
            ])))),
            req_body: ExplicitContextTag4::from(body),
        });
        let reply = self.exchange("TGS", &der(&tgs_req)?).await?;
        let tgs_rep: TgsRep = picky_asn1_der::from_bytes(&reply)
            .map_err(|e| self.protocol("TGS", format!("an unreadable TGS-REP: {e}")))?;
        let ticket = self.read_reply(
            "TGS",
            &tgs_rep.0,
            &tgt.suite,
            &tgt.session_key,
            key_usages::TGS_REP_ENC_SESSION_KEY,
            nonce,
        )?;
        tracing::info!(
            principal = %s.principal,
            service = %s.service,
            until = %ticket.end,
            "Kerberos service ticket obtained"
        );
        Ok(ticket)
    }

    /// Decrypts a KDC reply's encrypted part and checks its nonce.
    fn read_reply(
        &self,
        step: &'static str,
        rep: &KdcRep,
        suite: &CipherSuite,
        key: &[u8],
        usage: i32,
        nonce: u32,
    ) -> KrbResult<ServiceTicket> {
        let plain = suite
            .cipher()
            .decrypt(key, usage, &rep.enc_part.0.cipher.0 .0)
            .map_err(|e| match step {
                "AS" => KerberosError::Keytab {
                    principal: self.settings.principal.clone(),
                    detail: format!("its key cannot read the KDC's AS-REP ({e}): wrong keytab"),
                },
                _ => self.protocol(step, format!("undecryptable reply: {e}")),
            })?;
        // MIT writes the AS reply's part with the TGS tag too (RFC 4120 §5.4.2 allows both).
        let part = match picky_asn1_der::from_bytes::<EncAsRepPart>(&plain) {
            Ok(p) => p.0,
            Err(_) => {
                picky_asn1_der::from_bytes::<EncTgsRepPart>(&plain)
                    .map_err(|e| self.protocol(step, format!("an unreadable encrypted part: {e}")))?
                    .0
            }
        };
        if part.nonce.0.as_unsigned_bytes_be() != unsigned(nonce).as_unsigned_bytes_be() {
            return Err(self.protocol(step, "the reply's nonce is not the request's"));
        }
        let key_type = integer(&part.key.0.key_type.0);
        let suite = CipherSuite::try_from(key_type as usize)
            .map_err(|_| self.protocol(step, format!("a session key of type {key_type}")))?;
        Ok(ServiceTicket {
            ticket: rep.ticket.0.clone(),
            session_key: part.key.0.key_value.0 .0.clone(),
            suite,
            crealm: rep.crealm.0.clone(),
            cname: rep.cname.0.clone(),
            end: offset_time(&part.end_time.0)
                .ok_or_else(|| self.protocol(step, "an impossible end time"))?,
        })
    }

    /// An AP-REQ presenting `ticket` with an authenticator carrying `checksum`.
    fn ap_req(
        &self,
        ticket: &ServiceTicket,
        checksum: Checksum,
        usage: i32,
        step: &'static str,
    ) -> KrbResult<ApReq> {
        let now = OffsetDateTime::now_utc();
        let authenticator = Authenticator::from(AuthenticatorInner {
            authenticator_vno: ExplicitContextTag0::from(IntegerAsn1::from(vec![5])),
            crealm: ExplicitContextTag1::from(ticket.crealm.clone()),
            cname: ExplicitContextTag2::from(ticket.cname.clone()),
            cksum: Optional::from(Some(ExplicitContextTag3::from(checksum))),
            cusec: ExplicitContextTag4::from(unsigned(now.microsecond())),
            ctime: ExplicitContextTag5::from(kerberos_time(now)),
            subkey: Optional::from(None),
            seq_number: Optional::from(None),
            authorization_data: Optional::from(None),
        });
        let encrypted = ticket
            .suite
            .cipher()
            .encrypt(&ticket.session_key, usage, &der(&authenticator)?)
            .map_err(|e| self.protocol(step, e))?;
        Ok(ApReq::from(ApReqInner {
            pvno: ExplicitContextTag0::from(IntegerAsn1::from(vec![5])),
            msg_type: ExplicitContextTag1::from(IntegerAsn1::from(vec![AP_REQ_MSG_TYPE])),
            ap_options: ExplicitContextTag2::from(KerberosFlags::from(BitString::with_bytes(
                vec![0u8; 4],
            ))),
            ticket: ExplicitContextTag3::from(ticket.ticket.clone()),
            authenticator: ExplicitContextTag4::from(encrypted_data(&ticket.suite, encrypted)),
        }))
    }

    /// SPNEGO NegTokenInit { mechTypes: [krb5], mechToken: krb5 AP-REQ token } (RFC 4178,
    /// RFC 4121 §4.1).
    fn ap_req_token(&self, ticket: &ServiceTicket) -> KrbResult<Vec<u8>> {
        // RFC 4121 §4.1.1: no channel bindings (zeros), no flags asked (no mutual
        // authentication: the answer itself is what we trust, over TLS).
        let mut gss_checksum = vec![16, 0, 0, 0];
        gss_checksum.extend([0u8; 16]);
        gss_checksum.extend(0u32.to_le_bytes());
        let checksum = Checksum {
            cksumtype: ExplicitContextTag0::from(IntegerAsn1::from_bytes_be_unsigned(
                0x8003u32.to_be_bytes().to_vec(),
            )),
            checksum: ExplicitContextTag1::from(OctetStringAsn1::from(gss_checksum)),
        };
        let ap_req = self.ap_req(ticket, checksum, key_usages::AP_REQ_AUTHENTICATOR, "AP")?;
        let mut krb5_token = KRB5_OID.to_vec();
        krb5_token.extend([0x01, 0x00]); // TOK_ID: AP-REQ
        krb5_token.extend(der(&ap_req)?);
        let krb5_token = tlv(0x60, &krb5_token);
        let mech_types = tlv(0xa0, &tlv(0x30, KRB5_OID));
        let mech_token = tlv(0xa2, &tlv(0x04, &krb5_token));
        let neg_token_init = tlv(0xa0, &tlv(0x30, &[mech_types, mech_token].concat()));
        Ok(tlv(0x60, &[SPNEGO_OID, &neg_token_init].concat()))
    }

    /// One request to the KDC over TCP: 4-byte length, message; the same back.
    async fn exchange(&self, step: &'static str, request: &[u8]) -> KrbResult<Vec<u8>> {
        let kdc = &self.settings.kdc;
        let unreachable = |detail: String| KerberosError::KdcUnreachable {
            kdc: kdc.clone(),
            detail,
        };
        let mut framed = (request.len() as u32).to_be_bytes().to_vec();
        framed.extend_from_slice(request);
        let talk = async {
            let framed_reply = if kdc.starts_with("https://") || kdc.starts_with("http://") {
                self.through_proxy(&framed).await?
            } else {
                let mut stream = tokio::net::TcpStream::connect(kdc.as_str()).await?;
                stream.write_all(&framed).await?;
                let mut len = [0u8; 4];
                stream.read_exact(&mut len).await?;
                let len = u32::from_be_bytes(len) as usize;
                if len > MAX_KDC_REPLY {
                    return Err(std::io::Error::other(format!("a {len}-byte reply")));
                }
                let mut reply = (len as u32).to_be_bytes().to_vec();
                reply.resize(4 + len, 0);
                stream.read_exact(&mut reply[4..]).await?;
                reply
            };
            unframe(framed_reply)
        };
        let reply = tokio::time::timeout(self.connect_timeout, talk)
            .await
            .map_err(|_| unreachable(format!("no answer within {:?}", self.connect_timeout)))?
            .map_err(|e| unreachable(e.to_string()))?;
        // A KRB-ERROR is [APPLICATION 30].
        if reply.first() == Some(&0x7e) {
            let error: KrbError = picky_asn1_der::from_bytes(&reply)
                .map_err(|e| self.protocol(step, format!("an unreadable KRB-ERROR: {e}")))?;
            let code = error.0.error_code.0;
            let (name, hint) = kdc_error_name(code);
            return Err(KerberosError::Kdc {
                kdc: kdc.clone(),
                step,
                principal: self.settings.principal.clone(),
                code,
                name,
                hint,
            });
        }
        Ok(reply)
    }
}

impl Negotiator {
    /// One framed (length-prefixed) message through a KDC proxy (MS-KKDCP): POSTed as a
    /// `KDC-PROXY-MESSAGE` naming the realm, the framed reply read back from one.
    async fn through_proxy(&self, framed: &[u8]) -> std::io::Result<Vec<u8>> {
        use picky_krb::messages::KdcProxyMessage;
        let realm = split_principal(&self.settings.principal)
            .map(|(_, realm)| realm)
            .unwrap_or_default();
        let mut message = KdcProxyMessage::from_raw_kerb_message(framed)
            .map_err(|e| std::io::Error::other(format!("encoding a KDC proxy message: {e}")))?;
        let realm = Ia5String::from_string(realm)
            .map_err(|e| std::io::Error::other(format!("the realm: {e}")))?;
        message.target_domain = Optional::from(Some(ExplicitContextTag1::from(
            KerberosStringAsn1::from(realm),
        )));
        let body = message
            .to_vec()
            .map_err(|e| std::io::Error::other(format!("encoding a KDC proxy message: {e}")))?;
        let response = self
            .http
            .post(&self.settings.kdc)
            .header(reqwest::header::CONTENT_TYPE, "application/kerberos")
            .body(body)
            .send()
            .await
            .map_err(|e| std::io::Error::other(fmn_aws::retry::error_chain(&e)))?;
        let status = response.status();
        if !status.is_success() {
            return Err(std::io::Error::other(format!(
                "the KDC proxy answered {status}"
            )));
        }
        let bytes = response
            .bytes()
            .await
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        if bytes.len() > MAX_KDC_REPLY {
            return Err(std::io::Error::other(format!(
                "a {}-byte reply",
                bytes.len()
            )));
        }
        let reply = KdcProxyMessage::from_raw(&bytes)
            .map_err(|e| std::io::Error::other(format!("an unreadable KDC proxy reply: {e}")))?;
        Ok(reply.kerb_message.0 .0)
    }
}

/// The message of a framed (4-byte length first) reply.
fn unframe(mut framed: Vec<u8>) -> std::io::Result<Vec<u8>> {
    if framed.len() < 4 {
        return Err(std::io::Error::other("a reply shorter than its length"));
    }
    let len = u32::from_be_bytes([framed[0], framed[1], framed[2], framed[3]]) as usize;
    if framed.len() - 4 != len {
        return Err(std::io::Error::other(format!(
            "a reply of {} bytes announcing {len}",
            framed.len() - 4
        )));
    }
    Ok(framed.split_off(4))
}

/// DER of OID 1.2.840.113554.1.2.2 (Kerberos 5 GSS-API mechanism).
const KRB5_OID: &[u8] = &[
    0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x12, 0x01, 0x02, 0x02,
];
/// DER of OID 1.3.6.1.5.5.2 (SPNEGO).
const SPNEGO_OID: &[u8] = &[0x06, 0x06, 0x2b, 0x06, 0x01, 0x05, 0x05, 0x02];

/// A DER tag-length-value.
fn tlv(tag: u8, value: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = value.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes: Vec<u8> = (len as u32)
            .to_be_bytes()
            .into_iter()
            .skip_while(|b| *b == 0)
            .collect();
        out.push(0x80 | bytes.len() as u8);
        out.extend(bytes);
    }
    out.extend_from_slice(value);
    out
}

fn der<T: serde::Serialize>(value: &T) -> KrbResult<Vec<u8>> {
    picky_asn1_der::to_vec(value).map_err(|e| KerberosError::Protocol {
        kdc: String::new(),
        step: "encoding",
        detail: e.to_string(),
    })
}

fn unsigned(n: u32) -> IntegerAsn1 {
    IntegerAsn1::from_bytes_be_unsigned(n.to_be_bytes().to_vec())
}

fn integer(i: &IntegerAsn1) -> i64 {
    i.as_signed_bytes_be()
        .iter()
        .fold(0i64, |acc, b| (acc << 8) | i64::from(*b))
}

fn kerberos_time(t: OffsetDateTime) -> KerberosTime {
    let t = t.to_offset(time::UtcOffset::UTC);
    KerberosTime::from(
        GeneralizedTime::new(
            t.year() as u16,
            u8::from(t.month()),
            t.day(),
            t.hour(),
            t.minute(),
            t.second(),
        )
        .expect("a valid date"),
    )
}

fn offset_time(t: &KerberosTime) -> Option<OffsetDateTime> {
    let t = &t.0;
    let month = time::Month::try_from(t.month()).ok()?;
    let date = time::Date::from_calendar_date(i32::from(t.year()), month, t.day()).ok()?;
    let clock = time::Time::from_hms(t.hour(), t.minute(), t.second()).ok()?;
    Some(time::PrimitiveDateTime::new(date, clock).assume_utc())
}

fn principal_name(name_type: u8, components: &[String]) -> KrbResult<PrincipalName> {
    let strings = components
        .iter()
        .map(|c| {
            Ia5String::from_string(c.clone())
                .map(KerberosStringAsn1::from)
                .map_err(|e| KerberosError::Protocol {
                    kdc: String::new(),
                    step: "encoding",
                    detail: format!("principal component {c:?}: {e}"),
                })
        })
        .collect::<KrbResult<Vec<_>>>()?;
    Ok(PrincipalName {
        name_type: ExplicitContextTag0::from(IntegerAsn1::from(vec![name_type])),
        name_string: ExplicitContextTag1::from(Asn1SequenceOf::from(strings)),
    })
}

fn request_body(
    cname: Option<PrincipalName>,
    realm: &str,
    sname: PrincipalName,
    nonce: u32,
    etypes: &[CipherSuite],
    now: OffsetDateTime,
) -> KrbResult<KdcReqBody> {
    let realm = Ia5String::from_string(realm.to_string()).map_err(|e| KerberosError::Protocol {
        kdc: String::new(),
        step: "encoding",
        detail: format!("realm: {e}"),
    })?;
    Ok(KdcReqBody {
        kdc_options: ExplicitContextTag0::from(KerberosFlags::from(BitString::with_bytes(vec![
            0u8;
            4
        ]))),
        cname: Optional::from(cname.map(ExplicitContextTag1::from)),
        realm: ExplicitContextTag2::from(KerberosStringAsn1::from(realm)),
        sname: Optional::from(Some(ExplicitContextTag3::from(sname))),
        from: Optional::from(None),
        till: ExplicitContextTag5::from(kerberos_time(now + TICKET_LIFETIME)),
        rtime: Optional::from(None),
        nonce: ExplicitContextTag7::from(unsigned(nonce)),
        etype: ExplicitContextTag8::from(Asn1SequenceOf::from(
            etypes
                .iter()
                .map(|s| IntegerAsn1::from(vec![u8::from(s)]))
                .collect::<Vec<_>>(),
        )),
        addresses: Optional::from(None),
        enc_authorization_data: Optional::from(None),
        additional_tickets: Optional::from(None),
    })
}

fn encrypted_data(suite: &CipherSuite, cipher: Vec<u8>) -> EncryptedData {
    EncryptedData {
        etype: ExplicitContextTag0::from(IntegerAsn1::from(vec![u8::from(suite)])),
        kvno: Optional::from(None),
        cipher: ExplicitContextTag2::from(OctetStringAsn1::from(cipher)),
    }
}

fn checksum_suite(suite: &CipherSuite) -> ChecksumSuite {
    match suite {
        CipherSuite::Aes128CtsHmacSha196 => ChecksumSuite::HmacSha196Aes128,
        CipherSuite::Des3CbcSha1Kd => ChecksumSuite::HmacSha1Des3Kd,
        CipherSuite::Aes256CtsHmacSha196 => ChecksumSuite::HmacSha196Aes256,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A keytab as `ktutil` writes it: one aes256 entry (kvno 3) for `fmn/host@EXAMPLE.TEST`.
    fn keytab() -> Vec<u8> {
        let mut entry = Vec::new();
        entry.extend(2u16.to_be_bytes());
        for s in ["EXAMPLE.TEST", "fmn", "host"] {
            entry.extend((s.len() as u16).to_be_bytes());
            entry.extend(s.as_bytes());
        }
        entry.extend(1u32.to_be_bytes()); // name type
        entry.extend(0u32.to_be_bytes()); // timestamp
        entry.push(3);
        entry.extend(18u16.to_be_bytes());
        entry.extend(32u16.to_be_bytes());
        entry.extend([7u8; 32]);
        entry.extend(3u32.to_be_bytes());
        let mut file = vec![0x05, 0x02];
        file.extend((entry.len() as u32).to_be_bytes());
        file.extend(entry);
        file
    }

    #[test]
    fn keytabs_are_read_and_the_principal_key_chosen() {
        let entries = parse_keytab(&keytab()).unwrap();
        assert_eq!(entries.len(), 1);
        assert_eq!(entries[0].components, ["fmn", "host"]);
        assert_eq!(entries[0].kvno, 3);
        let (suite, key) = choose_key(&entries, "fmn/host@EXAMPLE.TEST").unwrap();
        assert_eq!(suite, CipherSuite::Aes256CtsHmacSha196);
        assert_eq!(key, [7u8; 32]);
        let other = choose_key(&entries, "bob@EXAMPLE.TEST").unwrap_err();
        assert!(other.contains("fmn/host@EXAMPLE.TEST"), "{other}");
        assert!(parse_keytab(b"hello").unwrap_err().contains("not a keytab"));
        assert_eq!(parse_keytab(&keytab()[..20]).unwrap_err(), "truncated");
    }

    #[test]
    fn settings_need_all_or_nothing() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            Vars::from_lookup(move |k| {
                pairs
                    .iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| v.to_string())
            })
        };
        let url = "https://fasjson.example.test";
        assert_eq!(KerberosSettings::from_vars(&env(&[]), url).unwrap(), None);
        let err = KerberosSettings::from_vars(&env(&[(PRINCIPAL_VAR, "fmn@X")]), url).unwrap_err();
        assert_eq!(err.name, KEYTAB_VAR);
        let err = KerberosSettings::from_vars(&env(&[(PRINCIPAL_VAR, "fmn")]), url).unwrap_err();
        assert_eq!(err.name, PRINCIPAL_VAR);
        let ok = KerberosSettings::from_vars(
            &env(&[
                (PRINCIPAL_VAR, "fmn@X"),
                (KEYTAB_VAR, "BQI="),
                (KDC_VAR, "kdc.example.test:88"),
            ]),
            url,
        )
        .unwrap()
        .unwrap();
        assert_eq!(ok.service, "HTTP/fasjson.example.test");
        assert_eq!(ok.keytab, [5, 2]);
        assert!(!format!("{ok:?}").contains("BQI"));
    }

    #[test]
    fn error_classes() {
        let kdc = |code| KerberosError::Kdc {
            kdc: "k".into(),
            step: "AS",
            principal: "p".into(),
            code,
            name: "",
            hint: "",
        };
        assert_eq!(kdc(24).class(), ErrorClass::Permanent);
        assert_eq!(kdc(6).class(), ErrorClass::Permanent);
        assert_eq!(kdc(37).class(), ErrorClass::Retryable);
        let unreachable = KerberosError::KdcUnreachable {
            kdc: "k".into(),
            detail: "refused".into(),
        };
        assert_eq!(unreachable.class(), ErrorClass::Retryable);
    }

    #[test]
    fn long_tlv_lengths() {
        assert_eq!(tlv(0x04, &[1, 2]), [0x04, 2, 1, 2]);
        let long = tlv(0x04, &[0u8; 300]);
        assert_eq!(&long[..4], &[0x04, 0x82, 0x01, 0x2c]);
    }
}
