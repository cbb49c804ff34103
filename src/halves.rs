//! Work split in two, one half on another thread: the engine's groups of one rule level,
//! and a run's other whole-population steps (serializing the snapshot, comparing every group
//! with the store). Two, because rosterd is sized for two cores.

/// `f` over the first and second halves of `0..n` at once; the results in order.
pub fn map_halves<R: Send>(
    n: usize,
    f: impl Fn(std::ops::Range<usize>) -> Vec<R> + Sync,
) -> Vec<R> {
    let mid = n.div_ceil(2);
    if n < 2 {
        return f(0..n);
    }
    let (mut out, second) = join(|| f(0..mid), || f(mid..n));
    out.extend(second);
    out
}

/// `a` on this thread and `b` on another, at once; both results.
pub fn join<A, B: Send>(a: impl FnOnce() -> A, b: impl FnOnce() -> B + Send) -> (A, B) {
    std::thread::scope(|scope| {
        let second = scope.spawn(b);
        let first = a();
        // A panic in the other thread is a bug; carry it on here.
        let second = second
            .join()
            .unwrap_or_else(|e| std::panic::resume_unwind(e));
        (first, second)
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn halves_keep_the_order() {
        for n in [0, 1, 2, 7] {
            let out = super::map_halves(n, |range| range.map(|i| i * 10).collect());
            assert_eq!(out, (0..n).map(|i| i * 10).collect::<Vec<_>>());
        }
    }
}
