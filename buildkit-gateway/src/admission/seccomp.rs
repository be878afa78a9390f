//! The gateway's own seccomp profile, put into every container it forwards.
//!
//! Choice: default action ERRNO(EPERM) with an allowlist, the shape of
//! docker's default profile, because a denylist silently allows every
//! syscall a kernel adds later. The list is written for what the sandbox
//! promises (see the architecture brief): no namespaces (`unshare`, `setns`,
//! namespace flags on `clone`), no mounts (old and new mount API), no
//! keyrings, bpf, perf, userfaultfd, ptrace or process_vm_*, no module or
//! kexec loading, no clock or swap or reboot control, no io_uring, and
//! AF_NETLINK sockets only for NETLINK_ROUTE. Many of those also need a
//! capability the container lacks; seccomp is the second wall, and the only
//! one for user namespaces, which need no capability at all.
//!
//! Only the native architecture is listed: 32-bit syscall entry points
//! (`int 0x80`, x32) take the bad-arch action, so `socketcall` and friends
//! cannot bypass the argument filters. 32-bit binaries therefore do not run
//! in berth containers.
//!
//! runc ignores names its libseccomp does not know, so the list may name
//! syscalls newer than the host's libseccomp; runc answers ENOSYS for
//! syscalls newer than any it knows, which lets libc fall back.

use oci_spec::runtime::LinuxSeccomp;
use serde_json::json;

/// EPERM, what a denied syscall returns.
const EPERM: u32 = 1;
/// ENOSYS, so glibc falls back from clone3 to clone (whose flags can be
/// filtered; clone3 passes them in memory seccomp cannot read).
const ENOSYS: u32 = 38;

/// CLONE_NEWNS | CLONE_NEWCGROUP | CLONE_NEWUTS | CLONE_NEWIPC |
/// CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNET.
pub const CLONE_NAMESPACE_FLAGS: u64 = 0x7E02_0000;
const AF_NETLINK: u64 = 16;
const NETLINK_ROUTE: u64 = 0;

/// personality(2) values glibc and common tools use: PER_LINUX,
/// PER_LINUX32, UNAME26 variants, and the 0xffffffff query.
const PERSONALITIES: [u64; 5] = [0x0, 0x8, 0x20000, 0x20008, 0xffff_ffff];

/// Syscalls allowed without conditions.
#[rustfmt::skip]
pub const ALLOWED: &[&str] = &[
    // files and descriptors
    "read", "write", "readv", "writev", "pread64", "pwrite64", "preadv", "pwritev",
    "preadv2", "pwritev2", "open", "openat", "openat2", "creat", "close", "close_range",
    "lseek", "dup", "dup2", "dup3", "pipe", "pipe2", "fcntl", "flock", "fsync",
    "fdatasync", "sync", "syncfs", "sync_file_range", "truncate", "ftruncate",
    "fallocate", "fadvise64", "readahead", "sendfile", "splice", "tee", "vmsplice",
    "copy_file_range", "ioctl", "stat", "fstat", "lstat", "newfstatat", "statx",
    "statfs", "fstatfs", "access", "faccessat", "faccessat2", "getdents", "getdents64",
    "getcwd", "chdir", "fchdir", "chroot", "rename", "renameat", "renameat2", "mkdir",
    "mkdirat", "rmdir", "link", "linkat", "unlink", "unlinkat", "symlink", "symlinkat",
    "readlink", "readlinkat", "chmod", "fchmod", "fchmodat", "fchmodat2", "chown",
    "fchown", "fchownat", "lchown", "umask", "utime", "utimes", "utimensat", "futimesat",
    "mknod", "mknodat", "getxattr", "lgetxattr", "fgetxattr", "setxattr", "lsetxattr",
    "fsetxattr", "listxattr", "llistxattr", "flistxattr", "removexattr", "lremovexattr",
    "fremovexattr", "getxattrat", "setxattrat", "listxattrat", "removexattrat",
    "inotify_init", "inotify_init1", "inotify_add_watch", "inotify_rm_watch",
    "memfd_create", "cachestat",
    // memory
    "brk", "mmap", "munmap", "mremap", "mprotect", "msync", "mincore", "madvise",
    "mlock", "mlock2", "munlock", "mlockall", "munlockall", "remap_file_pages",
    "membarrier", "pkey_alloc", "pkey_free", "pkey_mprotect", "map_shadow_stack", "mseal",
    // processes and threads (clone: see the conditional rules)
    "fork", "vfork", "execve", "execveat", "exit", "exit_group", "wait4", "waitid",
    "kill", "tkill", "tgkill", "getpid", "getppid", "gettid", "getuid", "geteuid",
    "getgid", "getegid", "getresuid", "getresgid", "getgroups", "setuid", "setgid",
    "setreuid", "setregid", "setresuid", "setresgid", "setgroups", "setfsuid", "setfsgid",
    "getpgid", "setpgid", "getpgrp", "getsid", "setsid", "prctl", "arch_prctl",
    "set_tid_address", "set_robust_list", "get_robust_list", "futex", "futex_waitv",
    "futex_wake", "futex_wait", "futex_requeue", "rseq", "capget", "capset",
    "getpriority", "setpriority", "sched_yield", "sched_getaffinity", "sched_setaffinity",
    "sched_getparam", "sched_setparam", "sched_getscheduler", "sched_setscheduler",
    "sched_get_priority_max", "sched_get_priority_min", "sched_rr_get_interval",
    "sched_getattr", "sched_setattr", "getrlimit", "setrlimit", "prlimit64", "getrusage",
    "times", "uname", "sysinfo", "ioprio_get", "ioprio_set", "pidfd_open",
    "pidfd_send_signal", "restart_syscall", "pause", "getcpu", "set_thread_area",
    "get_thread_area", "seccomp", "landlock_create_ruleset", "landlock_add_rule",
    "landlock_restrict_self",
    // time
    "nanosleep", "clock_nanosleep", "clock_gettime", "clock_getres", "gettimeofday",
    "time", "alarm", "getitimer", "setitimer", "timer_create", "timer_settime",
    "timer_gettime", "timer_getoverrun", "timer_delete", "timerfd_create",
    "timerfd_settime", "timerfd_gettime", "adjtimex",
    // signals
    "rt_sigaction", "rt_sigprocmask", "rt_sigreturn", "rt_sigpending", "rt_sigtimedwait",
    "rt_sigqueueinfo", "rt_tgsigqueueinfo", "rt_sigsuspend", "sigaltstack", "signalfd",
    "signalfd4",
    // waiting on descriptors
    "select", "pselect6", "poll", "ppoll", "epoll_create", "epoll_create1", "epoll_ctl",
    "epoll_wait", "epoll_pwait", "epoll_pwait2", "eventfd", "eventfd2",
    // System V and POSIX IPC (private ipc namespace)
    "shmget", "shmat", "shmdt", "shmctl", "semget", "semop", "semtimedop", "semctl",
    "msgget", "msgsnd", "msgrcv", "msgctl", "mq_open", "mq_unlink", "mq_timedsend",
    "mq_timedreceive", "mq_notify", "mq_getsetattr",
    // sockets (socket: see the conditional rules)
    "socketpair", "bind", "listen", "accept", "accept4", "connect", "getsockname",
    "getpeername", "sendto", "recvfrom", "sendmsg", "recvmsg", "sendmmsg", "recvmmsg",
    "shutdown", "setsockopt", "getsockopt",
    // misc
    "getrandom", "io_setup", "io_destroy", "io_submit", "io_cancel", "io_getevents",
    "io_pgetevents",
];

/// The architectures of the profile: the gateway's own.
fn architectures() -> Vec<&'static str> {
    if cfg!(target_arch = "aarch64") {
        vec!["SCMP_ARCH_AARCH64"]
    } else {
        vec!["SCMP_ARCH_X86_64"]
    }
}

/// The profile every forwarded container gets (built once).
pub fn default_profile() -> LinuxSeccomp {
    static PROFILE: std::sync::OnceLock<LinuxSeccomp> = std::sync::OnceLock::new();
    PROFILE.get_or_init(build_profile).clone()
}

fn build_profile() -> LinuxSeccomp {
    let mut syscalls = vec![json!({"names": ALLOWED, "action": "SCMP_ACT_ALLOW"})];
    // clone without namespace flags (runc ANDs conditions on distinct
    // arguments and ORs separate rules).
    syscalls.push(json!({
        "names": ["clone"], "action": "SCMP_ACT_ALLOW",
        "args": [{"index": 0, "value": CLONE_NAMESPACE_FLAGS, "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ"}]
    }));
    syscalls.push(json!({"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": ENOSYS}));
    // Any socket family but AF_NETLINK; AF_NETLINK only for NETLINK_ROUTE.
    syscalls.push(json!({
        "names": ["socket"], "action": "SCMP_ACT_ALLOW",
        "args": [{"index": 0, "value": AF_NETLINK, "op": "SCMP_CMP_NE"}]
    }));
    syscalls.push(json!({
        "names": ["socket"], "action": "SCMP_ACT_ALLOW",
        "args": [
            {"index": 0, "value": AF_NETLINK, "op": "SCMP_CMP_EQ"},
            {"index": 2, "value": NETLINK_ROUTE, "op": "SCMP_CMP_EQ"}
        ]
    }));
    for value in PERSONALITIES {
        syscalls.push(json!({
            "names": ["personality"], "action": "SCMP_ACT_ALLOW",
            "args": [{"index": 0, "value": value, "op": "SCMP_CMP_EQ"}]
        }));
    }
    let profile = json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "defaultErrnoRet": EPERM,
        "architectures": architectures(),
        "syscalls": syscalls,
    });
    serde_json::from_value(profile).expect("the built-in seccomp profile is a valid LinuxSeccomp")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Syscalls the boundary depends on never being allowed.
#[rustfmt::skip]
    const FORBIDDEN: &[&str] = &[
        "mount", "umount", "umount2", "pivot_root", "unshare", "setns", "keyctl", "add_key",
        "request_key", "bpf", "perf_event_open", "userfaultfd", "kexec_load",
        "kexec_file_load", "init_module", "finit_module", "delete_module",
        "open_by_handle_at", "name_to_handle_at", "ptrace", "process_vm_readv",
        "process_vm_writev", "swapon", "swapoff", "reboot", "syslog", "acct",
        "settimeofday", "clock_settime", "clock_adjtime", "lookup_dcookie", "quotactl",
        "quotactl_fd", "mount_setattr", "move_mount", "open_tree", "fsopen", "fsconfig",
        "fsmount", "fspick", "iopl", "ioperm", "vm86", "vm86old", "io_uring_setup",
        "io_uring_enter", "io_uring_register", "fanotify_init", "pidfd_getfd", "kcmp",
        "socketcall", "modify_ldt", "uselib", "_sysctl", "nfsservctl", "create_module",
        "get_kernel_syms", "query_module", "clone", "clone3", "socket", "personality",
    ];

    #[test]
    fn dangerous_syscalls_are_not_in_the_allowlist() {
        for name in FORBIDDEN {
            assert!(
                !ALLOWED.contains(name),
                "{name} must not be allowed unconditionally"
            );
        }
    }

    #[test]
    fn allowlist_has_no_duplicates() {
        let mut names = ALLOWED.to_vec();
        names.sort();
        let before = names.len();
        names.dedup();
        assert_eq!(before, names.len());
    }

    #[test]
    fn profile_serialises_as_runc_expects() {
        let json = serde_json::to_value(default_profile()).unwrap();
        assert_eq!(json["defaultAction"], "SCMP_ACT_ERRNO");
        assert_eq!(json["defaultErrnoRet"], 1);
        let rules = json["syscalls"].as_array().unwrap();
        let clone = rules
            .iter()
            .find(|r| r["names"] == json!(["clone"]))
            .unwrap();
        assert_eq!(clone["args"][0]["op"], "SCMP_CMP_MASKED_EQ");
        assert_eq!(clone["args"][0]["value"], CLONE_NAMESPACE_FLAGS);
        assert_eq!(clone["args"][0]["valueTwo"], 0);
        let clone3 = rules
            .iter()
            .find(|r| r["names"] == json!(["clone3"]))
            .unwrap();
        assert_eq!(clone3["action"], "SCMP_ACT_ERRNO");
        assert_eq!(clone3["errnoRet"], ENOSYS);
        let netlink = rules
            .iter()
            .find(|r| r["names"] == json!(["socket"]) && r["args"].as_array().unwrap().len() == 2)
            .unwrap();
        assert_eq!(netlink["args"][1]["index"], 2);
    }
}
