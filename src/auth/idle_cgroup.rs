//! An idle cgroup for the bcrypt threads, where the system lets us make one.
//!
//! A thread's policy (`SCHED_IDLE`) ranks it only among the threads of its own
//! group: the kernel first shares the CPU between groups (one per session when
//! autogroup is on, one per service cgroup under systemd or docker), so an
//! idle-policy hashing thread still takes its group's share from PostgreSQL's.
//! Seen in the benchmark: a backend waited 150 ms runnable beside a hashing
//! thread, and /users/me's p99 during a login storm was 2 to 333 times its p99
//! alone; with the hashing threads in a cgroup marked `cpu.idle`, which the
//! scheduler ranks below every group that is not, 1.7 to 5.4 and no stall.
//!
//! Only cgroup v1's cpu hierarchy is handled: there a thread may move on its
//! own. On v2 a thread may leave its process's cgroup only for a threaded child,
//! which turns the service's own cgroup into a threaded domain under its
//! manager's feet; there this is left to the deployment (see README).
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

/// The child cgroup's name. It is shared by every instance under the same
/// parent and never removed: an empty cgroup costs nothing, and one name means
/// restarts leave no trail.
pub const NAME: &str = "taskgate-bcrypt";

/// `NAME` under the process's cgroup in the v1 cpu hierarchy, marked idle.
#[derive(Debug)]
pub struct IdleCgroup(PathBuf);

impl IdleCgroup {
    /// Finds the process's cgroup and creates (or reuses) `NAME` under it
    /// with `cpu.idle = 1`.
    pub fn prepare() -> io::Result<Self> {
        let mountinfo = read("/proc/self/mountinfo")?;
        let cgroups = read("/proc/self/cgroup")?;
        let dir = cpu_cgroup_dir(&mountinfo, &cgroups)
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no cgroup v1 cpu hierarchy"))?
            .join(NAME);
        match fs::create_dir(&dir) {
            Err(e) if e.kind() != io::ErrorKind::AlreadyExists => return Err(with_path(e, &dir)),
            _ => {}
        }
        write(&dir.join("cpu.idle"), "1")?;
        Ok(IdleCgroup(dir))
    }

    pub fn dir(&self) -> &Path {
        &self.0
    }

    /// Moves the calling thread (only it) into the cgroup.
    pub fn join(&self) -> io::Result<()> {
        // SAFETY: gettid takes nothing and cannot fail.
        let tid = unsafe { libc::gettid() };
        write(&self.0.join("tasks"), &tid.to_string())
    }
}

fn read(path: &str) -> io::Result<String> {
    fs::read_to_string(path).map_err(|e| with_path(e, Path::new(path)))
}

fn write(path: &Path, value: &str) -> io::Result<()> {
    fs::write(path, value).map_err(|e| with_path(e, path))
}

fn with_path(e: io::Error, path: &Path) -> io::Error {
    io::Error::new(e.kind(), format!("{}: {e}", path.display()))
}

/// The directory of the process's cgroup in the v1 hierarchy that has the
/// cpu controller, from the texts of /proc/self/mountinfo and /proc/self/cgroup.
fn cpu_cgroup_dir(mountinfo: &str, cgroups: &str) -> Option<PathBuf> {
    let (root, mount_point) = mountinfo.lines().find_map(|line| {
        // "id parent major:minor root mount-point options [optional...] - type source super-options"
        let (fields, rest) = line.split_once(" - ")?;
        let mut rest = rest.split(' ');
        let (fstype, _source, options) = (rest.next()?, rest.next()?, rest.next()?);
        if fstype != "cgroup" || !options.split(',').any(|o| o == "cpu") {
            return None;
        }
        let mut fields = fields.split(' ').skip(3);
        Some((fields.next()?, fields.next()?))
    })?;
    let path = cgroups.lines().find_map(|line| {
        // "hierarchy-id:controllers:path"
        let mut parts = line.splitn(3, ':');
        let (_id, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
        controllers.split(',').any(|c| c == "cpu").then_some(path)
    })?;
    // A container may see only a subtree mounted: the path is from the hierarchy's root.
    let relative = path.strip_prefix(root).unwrap_or(path);
    Some(Path::new(mount_point).join(relative.trim_start_matches('/')))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MOUNTS: &str = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
40 31 0:37 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";

    #[test]
    fn finds_the_process_cgroup_in_the_cpu_hierarchy() {
        let cgroups = "2:cpuacct:/\n1:cpu:/services/api\n0::/\n";
        assert_eq!(
            cpu_cgroup_dir(MOUNTS, cgroups),
            Some(PathBuf::from("/sys/fs/cgroup/cpu/services/api"))
        );
        assert_eq!(
            cpu_cgroup_dir(MOUNTS, "1:cpu:/\n"),
            Some(PathBuf::from("/sys/fs/cgroup/cpu"))
        );
    }

    #[test]
    fn reads_combined_controllers_and_a_mounted_subtree() {
        let mounts = "50 31 0:40 /docker/abc /sys/fs/cgroup/cpu,cpuacct ro,nosuid shared:9 - cgroup cgroup rw,cpu,cpuacct\n";
        let cgroups = "3:cpu,cpuacct:/docker/abc/worker\n";
        assert_eq!(
            cpu_cgroup_dir(mounts, cgroups),
            Some(PathBuf::from("/sys/fs/cgroup/cpu,cpuacct/worker"))
        );
    }

    #[test]
    fn a_cpuacct_only_or_unified_hierarchy_is_not_the_cpu_one() {
        let unified = "40 31 0:37 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw,nsdelegate\n";
        assert_eq!(cpu_cgroup_dir(unified, "0::/user.slice\n"), None);
        let cpuacct = "33 31 0:30 / /sys/fs/cgroup/cpuacct rw - cgroup cgroup rw,cpuacct\n";
        assert_eq!(cpu_cgroup_dir(cpuacct, "2:cpuacct:/\n"), None);
    }

    /// Where the system lets a thread move (root, cgroup v1 with the cpu
    /// controller, as on the machine this was built on) the thread ends up in
    /// an idle cgroup; anywhere else joining fails and says why.
    #[test]
    fn a_thread_joins_the_idle_cgroup_where_permitted() {
        let permitted = {
            let dir = cpu_cgroup_dir(
                &fs::read_to_string("/proc/self/mountinfo").unwrap(),
                &fs::read_to_string("/proc/self/cgroup").unwrap(),
            );
            // SAFETY: geteuid takes nothing and cannot fail.
            let root = unsafe { libc::geteuid() } == 0;
            root && dir.is_some_and(|d| d.join("cpu.idle").exists())
        };
        let (joined, own_cgroups) = std::thread::spawn(|| {
            let joined = IdleCgroup::prepare().and_then(|cgroup| cgroup.join().map(|()| cgroup));
            (
                joined,
                fs::read_to_string("/proc/thread-self/cgroup").unwrap(),
            )
        })
        .join()
        .unwrap();
        if permitted {
            let cgroup = joined.expect("root with a v1 cpu hierarchy may move its threads");
            assert_eq!(
                fs::read_to_string(cgroup.dir().join("cpu.idle"))
                    .unwrap()
                    .trim(),
                "1"
            );
            let cpu_line = own_cgroups
                .lines()
                .find(|l| {
                    l.split(':')
                        .nth(1)
                        .is_some_and(|c| c.split(',').any(|c| c == "cpu"))
                })
                .unwrap();
            assert!(cpu_line.ends_with(&format!("/{NAME}")), "{cpu_line}");
        } else {
            assert!(
                joined.is_err(),
                "joined {joined:?} where it should not be permitted"
            );
        }
    }
}
