//! `--user name|uid[:group|gid]` resolved against an image's /etc/passwd and
//! /etc/group with the rules docker applies (runc's `GetExecUser`), so the
//! same user string gives the same IDs and the same errors.

/// The highest uid/gid runc accepts.
const MAX_ID: i64 = 2_147_483_647;

/// Why a user string did not resolve; the texts are runc's, as docker shows them.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UserError {
    #[error("unable to find user {0}: no matching entries in passwd file")]
    NoUser(String),
    #[error("unable to find group {0}: no matching entries in group file")]
    NoGroup(String),
    #[error("uids and gids must be in range 0-{MAX_ID}")]
    Range,
}

/// The process identity a user string resolves to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecUser {
    pub uid: u32,
    pub gid: u32,
    /// Supplementary groups: those listing the user as a member, only when
    /// no group was given explicitly.
    pub sgids: Vec<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct PasswdEntry {
    name: String,
    uid: i64,
    gid: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct GroupEntry {
    name: String,
    gid: i64,
    members: Vec<String>,
}

/// runc parses numeric fields with Atoi and keeps 0 when that fails.
fn atoi(s: &str) -> i64 {
    s.parse().unwrap_or(0)
}

fn lines(data: &[u8]) -> impl Iterator<Item = String> + '_ {
    data.split(|b| *b == b'\n')
        .map(|l| String::from_utf8_lossy(l).trim().to_string())
        .filter(|l| !l.is_empty())
}

/// `name:password:UID:GID:GECOS:directory:shell`, missing fields empty.
fn parse_passwd(data: &[u8]) -> Vec<PasswdEntry> {
    lines(data)
        .map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            let at = |i: usize| f.get(i).copied().unwrap_or("");
            PasswdEntry {
                name: at(0).to_string(),
                uid: atoi(at(2)),
                gid: atoi(at(3)),
            }
        })
        .collect()
}

/// `name:password:GID:member,member`.
fn parse_group(data: &[u8]) -> Vec<GroupEntry> {
    lines(data)
        .map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            let at = |i: usize| f.get(i).copied().unwrap_or("");
            let members = at(3)
                .split(',')
                .filter(|m| !m.is_empty())
                .map(str::to_string)
                .collect();
            GroupEntry {
                name: at(0).to_string(),
                gid: atoi(at(2)),
                members,
            }
        })
        .collect()
}

fn in_range(id: i64) -> Result<u32, UserError> {
    if (0..=MAX_ID).contains(&id) {
        Ok(id as u32)
    } else {
        Err(UserError::Range)
    }
}

/// Resolves `spec` (`user`, `uid`, `user:group`, `uid:gid`, …) against the
/// image's files (`None`: the file does not exist), starting from root.
///
/// A numeric user without a passwd entry is fine and keeps gid 0; a name
/// must exist. With a user entry and no explicit group, the groups listing
/// the user become supplementary groups.
pub fn exec_user(
    spec: &str,
    passwd: Option<&[u8]>,
    group: Option<&[u8]>,
) -> Result<ExecUser, UserError> {
    let mut parts = spec.split(':');
    let user_arg = parts.next().unwrap_or("");
    let group_arg = parts.next().unwrap_or("");
    let uid_num = user_arg.parse::<i64>().ok();
    let gid_num = group_arg.parse::<i64>().ok();

    let users = passwd.map(parse_passwd).unwrap_or_default();
    let matched = users.iter().find(|u| match (user_arg.is_empty(), uid_num) {
        (true, _) => u.uid == 0,
        // A numeric argument is always a uid, never a name.
        (false, Some(n)) => u.uid == n,
        (false, None) => u.name == user_arg,
    });

    let (mut uid, mut gid) = (0i64, 0i64);
    let mut matched_name = "";
    if let Some(u) = matched {
        matched_name = &u.name;
        uid = u.uid;
        gid = u.gid;
    } else if !user_arg.is_empty() {
        match uid_num {
            Some(n) => uid = n,
            None => return Err(UserError::NoUser(user_arg.to_string())),
        }
    }
    let uid = in_range(uid)?;

    let mut sgids = Vec::new();
    if !group_arg.is_empty() || !matched_name.is_empty() {
        let groups = group.map(parse_group).unwrap_or_default();
        if !group_arg.is_empty() {
            let found = groups.iter().find(|g| match gid_num {
                Some(n) => g.gid == n,
                None => g.name == group_arg,
            });
            gid = match (found, gid_num) {
                (Some(g), _) => g.gid,
                (None, Some(n)) => n,
                (None, None) => return Err(UserError::NoGroup(group_arg.to_string())),
            };
        } else {
            for g in groups
                .iter()
                .filter(|g| g.members.iter().any(|m| m == matched_name))
            {
                sgids.push(in_range(g.gid)?);
            }
        }
    }
    Ok(ExecUser {
        uid,
        gid: in_range(gid)?,
        sgids,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &[u8] = b"root:x:0:0:root:/root:/bin/sh\n\
        daemon:x:1:1::/usr/sbin:/usr/sbin/nologin\n\
        \n\
        berth:x:1000:1000:Berth:/home/berth:/bin/sh\n\
        nogid:x:1001\n\
        555:x:1002:1002::/:/bin/sh\n";
    const GROUP: &[u8] = b"root:x:0:\n\
        daemon:x:1:\n\
        berth:x:1000:\n\
        wheel:x:10:berth,root\n\
        docker:x:999:berth\n";

    fn user(spec: &str) -> Result<ExecUser, UserError> {
        exec_user(spec, Some(PASSWD), Some(GROUP))
    }

    fn ok(uid: u32, gid: u32, sgids: &[u32]) -> Result<ExecUser, UserError> {
        Ok(ExecUser {
            uid,
            gid,
            sgids: sgids.to_vec(),
        })
    }

    #[test]
    fn resolves_like_runc() {
        assert_eq!(user(""), ok(0, 0, &[10]));
        assert_eq!(user("root"), ok(0, 0, &[10]));
        assert_eq!(user("0"), ok(0, 0, &[10]));
        assert_eq!(user("berth"), ok(1000, 1000, &[10, 999]));
        assert_eq!(user("1000"), ok(1000, 1000, &[10, 999]));
        assert_eq!(user("berth:daemon"), ok(1000, 1, &[]));
        assert_eq!(user("berth:4242"), ok(1000, 4242, &[]));
        assert_eq!(user("1000:0"), ok(1000, 0, &[]));
        // A numeric user without an entry keeps gid 0 and gets no groups.
        assert_eq!(user("4242"), ok(4242, 0, &[]));
        assert_eq!(user("4242:wheel"), ok(4242, 10, &[]));
        // A numeric argument is a uid even when a user has that name.
        assert_eq!(user("555"), ok(555, 0, &[]));
        // runc's Atoi leaves a missing gid at 0.
        assert_eq!(user("nogid"), ok(1001, 0, &[]));
        assert_eq!(user("daemon"), ok(1, 1, &[]));
    }

    #[test]
    fn refuses_like_runc() {
        assert_eq!(
            user("nosuch").unwrap_err().to_string(),
            "unable to find user nosuch: no matching entries in passwd file"
        );
        assert_eq!(
            user("berth:nosuch").unwrap_err().to_string(),
            "unable to find group nosuch: no matching entries in group file"
        );
        assert_eq!(
            user("-1").unwrap_err().to_string(),
            "uids and gids must be in range 0-2147483647"
        );
        assert_eq!(user("1:2147483648"), Err(UserError::Range));
    }

    #[test]
    fn images_without_files() {
        assert_eq!(exec_user("0", None, None), ok(0, 0, &[]));
        assert_eq!(exec_user("123:456", None, None), ok(123, 456, &[]));
        assert_eq!(
            exec_user("app", None, None),
            Err(UserError::NoUser("app".into()))
        );
        assert_eq!(
            exec_user("1:staff", Some(PASSWD), None),
            Err(UserError::NoGroup("staff".into()))
        );
    }
}
