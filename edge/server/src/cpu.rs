//! CPU-heavy work (password hashing) on tokio's blocking threads, a few at a time, behind a
//! bounded queue: a flood of logins waits its turn or is told the server is busy, while the
//! threads that serve every other request stay free.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use cloudos_core::ports::{Cpu, CpuBusy, CpuJob};
use tokio::sync::Semaphore;

/// Runs jobs on blocking threads, `parallel` at once, at most `queue` more waiting.
pub struct BlockingCpu {
    running: Arc<Semaphore>,
    /// Jobs admitted (running or waiting).
    admitted: AtomicUsize,
    limit: usize,
}

/// Decrements the admitted count however the job ends (even if the caller goes away).
struct Admitted<'a>(&'a AtomicUsize);

impl Drop for Admitted<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl BlockingCpu {
    /// `parallel` jobs at once and `queue` waiting.
    pub fn new(parallel: usize, queue: usize) -> Self {
        let parallel = parallel.max(1);
        BlockingCpu {
            running: Arc::new(Semaphore::new(parallel)),
            admitted: AtomicUsize::new(0),
            limit: parallel + queue,
        }
    }

    /// One job per core but one (that core stays for requests; at least one job), and 64
    /// waiting: at ~15 ms a hash, the last waits about a second on two cores.
    pub fn for_this_machine() -> Self {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        Self::new(cores.saturating_sub(1), 64)
    }
}

#[async_trait]
impl Cpu for BlockingCpu {
    async fn run(&self, job: CpuJob) -> Result<(), CpuBusy> {
        if self.admitted.fetch_add(1, Ordering::SeqCst) >= self.limit {
            self.admitted.fetch_sub(1, Ordering::SeqCst);
            return Err(CpuBusy);
        }
        let _admitted = Admitted(&self.admitted);
        let permit = self
            .running
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| CpuBusy)?;
        tokio::task::spawn_blocking(move || {
            job();
            drop(permit);
        })
        .await
        .map_err(|_| CpuBusy)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_full_queue_refuses_at_once_and_frees_as_jobs_end() {
        let cpu = Arc::new(BlockingCpu::new(1, 1));
        let (release, gate) = std::sync::mpsc::channel::<()>();
        let gate = Arc::new(std::sync::Mutex::new(gate));
        let blocked = |gate: Arc<std::sync::Mutex<std::sync::mpsc::Receiver<()>>>| -> CpuJob {
            Box::new(move || {
                let _ = gate.lock().unwrap().recv();
            })
        };
        let first = tokio::spawn({
            let (cpu, job) = (cpu.clone(), blocked(gate.clone()));
            async move { cpu.run(job).await }
        });
        let second = tokio::spawn({
            let (cpu, job) = (cpu.clone(), blocked(gate.clone()));
            async move { cpu.run(job).await }
        });
        while cpu.admitted.load(Ordering::SeqCst) < 2 {
            tokio::task::yield_now().await;
        }
        assert!(
            cpu.run(Box::new(|| {})).await.is_err(),
            "one running, one waiting: full"
        );
        release.send(()).unwrap();
        release.send(()).unwrap();
        assert!(first.await.unwrap().is_ok() && second.await.unwrap().is_ok());
        assert!(cpu.run(Box::new(|| {})).await.is_ok(), "room again");
    }
}
