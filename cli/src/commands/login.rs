//! `docker login` and `docker logout`: credentials are checked against the
//! registry's `/v2/` (through the proxy, answering its challenge), then
//! kept in `$DOCKER_CONFIG/config.json` in docker's format. They never
//! pass through the gateway.

use std::io::{BufRead, IsTerminal, Read, Write};

use crate::cli::{LoginArgs, LogoutArgs};
use crate::error::{CliError, Result};
use crate::registry::client::check_login;
use crate::registry::config::{ConfigFile, Credentials};
use crate::registry::endpoint::server_arg;
use crate::registry::proxy::ProxyConfig;
use crate::registry::transport;

pub async fn login(a: LoginArgs) -> Result<i32> {
    let registry = server_arg(a.server.as_deref().unwrap_or(""));
    let mut config = ConfigFile::load().map_err(CliError::general)?;
    if a.password.is_some() && a.password_stdin {
        return Err(CliError::general(
            "--password and --password-stdin are mutually exclusive",
        ));
    }
    let mut password = a.password.clone();
    if password.is_some() {
        eprintln!("WARNING! Using --password via the CLI is insecure. Use --password-stdin.");
    }
    if a.password_stdin {
        if a.username.is_none() {
            return Err(CliError::general(
                "Must provide --username with --password-stdin",
            ));
        }
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .map_err(|e| CliError::general(format!("reading the password from stdin: {e}")))?;
        password = Some(text.trim_end_matches(['\n', '\r']).to_string());
    }
    let creds = match (a.username.clone(), password) {
        (Some(u), Some(p)) => Credentials {
            username: u,
            password: p,
        },
        (None, None) if config.credentials(&registry).is_some() => {
            println!("Authenticating with existing credentials...");
            config.credentials(&registry).expect("checked above")
        }
        (user, pass) => {
            if !std::io::stdin().is_terminal() {
                return Err(CliError::general(
                    "Error: Cannot perform an interactive login from a non TTY device",
                ));
            }
            let username = match user {
                Some(u) => u,
                None => prompt("Username: ", true)?,
            };
            if username.is_empty() {
                return Err(CliError::general("Error: Non-null Username Required"));
            }
            let password = match pass {
                Some(p) => p,
                None => prompt("Password: ", false)?,
            };
            if password.is_empty() {
                return Err(CliError::general("Error: Password Required"));
            }
            Credentials { username, password }
        }
    };
    let http = transport::client(ProxyConfig::from_env().map_err(CliError::general)?);
    check_login(&http, &registry, &creds)
        .await
        .map_err(|e| CliError::general(format!("Error response from daemon: {e}")))?;
    config.set_credentials(&registry, &creds);
    config.save().map_err(CliError::general)?;
    println!("Login Succeeded");
    Ok(0)
}

pub async fn logout(a: LogoutArgs) -> Result<i32> {
    let registry = server_arg(a.server.as_deref().unwrap_or(""));
    let mut config = ConfigFile::load().map_err(CliError::general)?;
    if !config.remove_credentials(&registry) {
        println!("Not logged in to {}", registry.shown());
        return Ok(0);
    }
    println!("Removing login credentials for {}", registry.shown());
    config.save().map_err(CliError::general)?;
    Ok(0)
}

/// Asks on the terminal; the password is read with echo off.
fn prompt(label: &str, echo: bool) -> Result<String> {
    use nix::sys::termios::{tcgetattr, tcsetattr, LocalFlags, SetArg};
    print!("{label}");
    let _ = std::io::stdout().flush();
    let stdin = std::io::stdin();
    let saved = if echo { None } else { tcgetattr(&stdin).ok() };
    if let Some(t) = &saved {
        let mut quiet = t.clone();
        quiet.local_flags.remove(LocalFlags::ECHO);
        let _ = tcsetattr(&stdin, SetArg::TCSANOW, &quiet);
    }
    let mut line = String::new();
    let r = stdin.lock().read_line(&mut line);
    if let Some(t) = &saved {
        let _ = tcsetattr(&stdin, SetArg::TCSANOW, t);
        println!();
    }
    r.map_err(|e| CliError::general(format!("reading {}: {e}", label.trim_end_matches(": "))))?;
    Ok(line.trim_end_matches(['\n', '\r']).trim().to_string())
}
