//! The state both text displays keep of a build: every vertex with its
//! run intervals, statuses, log lines and warnings, merged from the
//! stream of [`SolveStatus`] updates. Vertices of one progress group are
//! shown as a single vertex, as buildx does.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::time::Instant;

use super::{SolveStatus, Time, Vertex, VertexStatus, VertexWarning};

/// How many log lines of a vertex plain mode keeps for the error summary.
pub const TAIL_LINES: usize = 10;

#[derive(Debug, Default)]
pub struct VState {
    pub v: Vertex,
    /// Order of first appearance.
    pub seen: u64,
    /// The `#N` of plain mode; 0 until first printed.
    pub index: usize,
    /// Start (unix nanos) → (start, stop).
    pub intervals: BTreeMap<i64, (Time, Option<Time>)>,
    /// Status IDs in the order they started.
    pub statuses: Vec<String>,
    pub by_id: HashMap<String, VertexStatus>,
    /// Status IDs updated since last printed, in order.
    pub status_updates: Vec<String>,
    /// Log lines not yet printed (`<seconds> <text>`), or all of them in tty mode.
    pub logs: Vec<Vec<u8>>,
    pub logs_partial: bool,
    pub logs_offset: usize,
    /// The last printed log lines (plain mode), for the error summary.
    pub tail: VecDeque<Vec<u8>>,
    pub warnings: Vec<VertexWarning>,
    pub warning_idx: usize,
    /// When the oldest unprinted update arrived, and how many there are.
    pub last_block: Option<Instant>,
    pub count: usize,
    /// A group whose members have not started yet.
    pub hidden: bool,
    pub is_group: bool,
    /// Members of a group, by digest.
    pub members: BTreeMap<String, Vertex>,
}

impl VState {
    fn bump(&mut self) {
        if self.count == 0 {
            self.last_block = Some(Instant::now());
        }
        self.count += 1;
    }

    /// The run intervals with overlapping ones merged; an open interval
    /// swallows everything after it.
    pub fn merged(&self) -> Vec<(Time, Option<Time>)> {
        merge(self.intervals.values().copied().collect())
    }

    pub fn is_started(&self) -> bool {
        !self.intervals.is_empty()
    }

    pub fn is_completed(&self) -> bool {
        self.merged().last().is_some_and(|(_, stop)| stop.is_some())
    }

    pub fn most_recent_start(&self) -> Option<Time> {
        self.merged().last().map(|(start, _)| *start)
    }

    /// Seconds spent running, the sum of the merged intervals (open ones up
    /// to `now`).
    pub fn duration(&self, now: Time) -> f64 {
        self.merged()
            .iter()
            .map(|(start, stop)| secs(stop.unwrap_or(now) - *start))
            .sum()
    }
}

pub fn secs(d: chrono::TimeDelta) -> f64 {
    d.num_nanoseconds()
        .map(|n| n as f64 / 1e9)
        .unwrap_or_else(|| d.num_milliseconds() as f64 / 1e3)
}

fn merge(mut ivals: Vec<(Time, Option<Time>)>) -> Vec<(Time, Option<Time>)> {
    ivals.sort_by_key(|(start, _)| *start);
    let mut out: Vec<(Time, Option<Time>)> = Vec::new();
    let mut iter = ivals.into_iter();
    let Some(mut cur) = iter.next() else {
        return out;
    };
    for next in iter {
        let Some(stop) = cur.1 else {
            out.push(cur);
            return out;
        };
        if stop < next.0 {
            out.push(cur);
            cur = next;
            continue;
        }
        match next.1 {
            None => {
                out.push((cur.0, None));
                return out;
            }
            Some(next_stop) if next_stop > stop => cur = (cur.0, Some(next_stop)),
            Some(_) => {}
        }
    }
    out.push(cur);
    out
}

#[derive(Debug, Default)]
pub struct Trace {
    pub by_digest: HashMap<String, VState>,
    /// Digests of vertices that have started, in that order.
    pub started: Vec<String>,
    /// Vertices updated since they were last printed.
    pub updates: HashSet<String>,
    /// Member digest → group key.
    alias: HashMap<String, String>,
    /// Start of the first vertex, as BuildKit's clock says.
    pub start_time: Option<Time>,
    /// Local clock minus BuildKit's clock at the first start.
    pub local_offset: Option<chrono::TimeDelta>,
    seq: u64,
}

impl Trace {
    fn key(&self, digest: &str) -> String {
        self.alias
            .get(digest)
            .cloned()
            .unwrap_or_else(|| digest.to_string())
    }

    fn entry(&mut self, key: &str) -> &mut VState {
        if !self.by_digest.contains_key(key) {
            self.seq += 1;
            let st = VState {
                seen: self.seq,
                ..Default::default()
            };
            self.by_digest.insert(key.to_string(), st);
        }
        self.by_digest.get_mut(key).expect("inserted")
    }

    pub fn update(&mut self, s: &SolveStatus) {
        let mut groups: Vec<String> = Vec::new();
        for v in &s.vertexes {
            if self.start_time.is_none() {
                self.start_time = v.started;
            }
            if let Some(g) = &v.progress_group {
                let key = format!("group:{}", g.id);
                let st = self.entry(&key);
                if !st.is_group {
                    st.is_group = true;
                    st.hidden = true;
                    st.v.digest = key.clone();
                    st.v.name = g.name.clone();
                }
                st.members.insert(v.digest.clone(), v.clone());
                self.alias.insert(v.digest.clone(), key.clone());
                if !groups.contains(&key) {
                    groups.push(key);
                }
                continue;
            }
            let now_local = chrono::Utc::now();
            let st = self.entry(&v.digest);
            let was_started = st.is_started();
            if v.started.is_some() {
                let old = &st.v;
                let changed = old.digest != v.digest
                    || old.name != v.name
                    || old.started != v.started
                    || (old.completed != v.completed && v.completed.is_some())
                    || old.cached != v.cached
                    || old.error != v.error;
                if changed {
                    st.bump();
                    self.updates.insert(v.digest.clone());
                }
            }
            let st = self.by_digest.get_mut(&v.digest).expect("entry");
            // A repeated initial vertex must not reset a started one.
            if !(was_started && v.started.is_none()) {
                st.v = v.clone();
            }
            if let Some(start) = v.started {
                st.intervals.insert(
                    start.timestamp_nanos_opt().unwrap_or(0),
                    (start, v.completed),
                );
                if !was_started {
                    if self.local_offset.is_none() {
                        self.local_offset = Some(now_local - start);
                    }
                    self.started.push(v.digest.clone());
                }
            }
        }
        for key in groups {
            self.refresh_group(&key);
        }
        for s in &s.statuses {
            let key = self.key(&s.vertex);
            let Some(st) = self.by_digest.get_mut(&key) else {
                continue;
            };
            let prev_started = st.by_id.get(&s.id).map(|p| p.started.is_some());
            if s.started.is_some() && prev_started != Some(true) {
                st.statuses.push(s.id.clone());
            }
            st.by_id.insert(s.id.clone(), s.clone());
            if !st.status_updates.contains(&s.id) {
                st.status_updates.push(s.id.clone());
            }
            st.bump();
            self.updates.insert(key);
        }
        for w in &s.warnings {
            let key = self.key(&w.vertex);
            if let Some(st) = self.by_digest.get_mut(&key) {
                st.warnings.push(w.clone());
                st.bump();
                self.updates.insert(key);
            }
        }
        for l in &s.logs {
            let key = self.key(&l.vertex);
            let Some(st) = self.by_digest.get_mut(&key) else {
                continue;
            };
            if l.data.is_empty() {
                continue;
            }
            let start = st.most_recent_start();
            let mut first = true;
            let mut rest: &[u8] = &l.data;
            let complete = loop {
                if rest.is_empty() {
                    break true;
                }
                let (line, more) = match rest.iter().position(|&b| b == b'\n') {
                    Some(i) => (&rest[..i], Some(&rest[i + 1..])),
                    None => (rest, None),
                };
                if first && st.logs_partial && !st.logs.is_empty() {
                    st.logs
                        .last_mut()
                        .expect("non-empty")
                        .extend_from_slice(line);
                } else {
                    let ts = match (start, l.timestamp) {
                        (Some(s), Some(t)) => secs(t - s),
                        _ => 0.0,
                    };
                    let mut entry = log_time(ts).into_bytes();
                    entry.push(b' ');
                    entry.extend_from_slice(line);
                    st.logs.push(entry);
                }
                first = false;
                match more {
                    Some(m) => rest = m,
                    None => break false,
                }
            };
            st.logs_partial = !complete;
            st.bump();
            self.updates.insert(key);
        }
    }

    /// Recomputes a group vertex from its members, as buildx does: started
    /// when a member started, cached when all are, the first error.
    fn refresh_group(&mut self, key: &str) {
        let Some(st) = self.by_digest.get_mut(key) else {
            return;
        };
        let was_started = st.is_started();
        let was_hidden = st.hidden;
        let mut cached = true;
        let mut error = String::new();
        let mut changed = false;
        let members: Vec<Vertex> = st.members.values().cloned().collect();
        for m in &members {
            if let Some(start) = m.started {
                let k = start.timestamp_nanos_opt().unwrap_or(0);
                if st.intervals.get(&k) != Some(&(start, m.completed)) {
                    changed = true;
                }
                st.intervals.insert(k, (start, m.completed));
                if !m.progress_group.as_ref().is_some_and(|g| g.weak) {
                    st.hidden = false;
                }
            }
            cached &= m.cached;
            if error.is_empty() {
                error = m.error.clone();
            }
        }
        if st.v.cached != cached || st.v.error != error {
            changed = true;
        }
        st.v.cached = cached;
        st.v.error = error;
        if let Some((start, stop)) = st.merged().first().copied() {
            st.v.started = Some(start);
            st.v.completed = if st.is_completed() {
                stop.or(st.v.completed)
            } else {
                None
            };
        }
        let newly_started = !was_started && st.is_started();
        if st.hidden {
            return;
        }
        if newly_started && self.local_offset.is_none() {
            if let Some(s) = st.v.started {
                self.local_offset = Some(chrono::Utc::now() - s);
            }
        }
        let st = self.by_digest.get_mut(key).expect("group");
        if was_hidden && !st.hidden {
            changed = true;
            self.started.push(key.to_string());
        }
        if changed {
            st.bump();
            self.updates.insert(key.to_string());
        }
    }
}

/// A log line's time since its vertex started, as buildx prints it:
/// three decimals under 10 s, two under 100 s, else one.
pub fn log_time(secs: f64) -> String {
    if secs < 10.0 {
        format!("{secs:.3}")
    } else if secs < 100.0 {
        format!("{secs:.2}")
    } else {
        format!("{secs:.1}")
    }
}

/// Whether a vertex error is a cancellation (shown as CANCELED).
pub fn is_canceled(error: &str) -> bool {
    error.ends_with("context canceled")
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn t(ms: i64) -> Time {
        chrono::Utc.timestamp_millis_opt(1_000_000 + ms).unwrap()
    }

    #[test]
    fn merges_intervals() {
        assert_eq!(
            merge(vec![
                (t(0), Some(t(10))),
                (t(5), Some(t(20))),
                (t(30), Some(t(40)))
            ]),
            vec![(t(0), Some(t(20))), (t(30), Some(t(40)))]
        );
        assert_eq!(
            merge(vec![(t(0), None), (t(5), Some(t(20)))]),
            vec![(t(0), None)]
        );
        assert_eq!(
            merge(vec![(t(0), Some(t(10))), (t(5), None)]),
            vec![(t(0), None)]
        );
    }

    #[test]
    fn log_times() {
        assert_eq!(log_time(0.0654), "0.065");
        assert_eq!(log_time(12.3456), "12.35");
        assert_eq!(log_time(123.45), "123.5");
    }

    #[test]
    fn partial_log_lines_are_joined() {
        let mut tr = Trace::default();
        let v = Vertex {
            digest: "a".into(),
            name: "x".into(),
            started: Some(t(0)),
            ..Default::default()
        };
        let log = |data: &[u8]| super::super::VertexLog {
            vertex: "a".into(),
            stream: 1,
            data: data.to_vec(),
            timestamp: Some(t(65)),
        };
        tr.update(&SolveStatus {
            vertexes: vec![v],
            logs: vec![log(b"hel"), log(b"lo\nwor"), log(b"ld\n")],
            ..Default::default()
        });
        let st = &tr.by_digest["a"];
        assert_eq!(
            st.logs,
            vec![b"0.065 hello".to_vec(), b"0.065 world".to_vec()]
        );
        assert!(!st.logs_partial);
    }

    #[test]
    fn groups_merge_their_members() {
        let mut tr = Trace::default();
        let g = Some(super::super::ProgressGroup {
            id: "g".into(),
            name: "[2/2] COPY a b /".into(),
            weak: false,
        });
        tr.update(&SolveStatus {
            vertexes: vec![
                Vertex {
                    digest: "m1".into(),
                    started: Some(t(0)),
                    completed: Some(t(10)),
                    cached: true,
                    progress_group: g.clone(),
                    ..Default::default()
                },
                Vertex {
                    digest: "m2".into(),
                    started: Some(t(5)),
                    completed: Some(t(20)),
                    progress_group: g,
                    ..Default::default()
                },
            ],
            ..Default::default()
        });
        assert_eq!(tr.started, ["group:g"]);
        let st = &tr.by_digest["group:g"];
        assert!(st.is_completed() && !st.v.cached);
        assert_eq!(st.v.name, "[2/2] COPY a b /");
    }
}
