//! Work over a tree's files on a few threads: a tool tree is a few big binaries, and one core
//! hashes or copies page cache at a few GB/s, so a handful of threads is all that pays.

use std::sync::atomic::{AtomicUsize, Ordering};

use crate::error::{Error, Result};

/// Runs `work` on every item, largest first (by `size`), on up to four threads once the
/// items add up to `parallel_from` bytes (one thread below). The first error is returned.
pub fn largest_first<T: Sync>(
    items: &mut [T],
    size: impl Fn(&T) -> u64,
    parallel_from: u64,
    work: impl Fn(&T) -> Result<()> + Sync,
) -> Result<()> {
    items.sort_by_key(|t| std::cmp::Reverse(size(t)));
    let total: u64 = items.iter().map(&size).sum();
    let threads = if total < parallel_from {
        1
    } else {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
            .min(4)
            .min(items.len())
    };
    let items = &*items;
    let next = AtomicUsize::new(0);
    let run = || -> Result<()> {
        while let Some(item) = items.get(next.fetch_add(1, Ordering::Relaxed)) {
            work(item)?;
        }
        Ok(())
    };
    if threads <= 1 {
        return run();
    }
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads).map(|_| scope.spawn(run)).collect();
        handles
            .into_iter()
            .map(|h| {
                h.join().unwrap_or_else(|_| {
                    Err(Error::input(
                        "a worker thread panicked",
                        "report this as a bug",
                    ))
                })
            })
            .collect::<Result<Vec<()>>>()
    })
    .map(|_| ())
}
