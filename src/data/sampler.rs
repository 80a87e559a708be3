//! The orders a set is walked in: a shuffle, file order, or Hugging Face's length-grouped
//! order.

use rand::rngs::StdRng;
use rand::seq::SliceRandom;

/// Order in which a set is batched. The random orders carry their seed, so a pass is
/// reproducible from the seed alone (a resumed run redraws an epoch's order from it).
#[derive(Debug, Clone, Copy)]
pub enum Sampler {
    /// A fresh shuffle (training).
    Random { seed: u64 },
    /// File order (evaluation).
    Sequential,
    /// Hugging Face's `LengthGroupedSampler` (`group_by_length=True`): a random permutation
    /// cut into megabatches of `min(n / (4 · batch), 50) · batch` rows, each sorted by length,
    /// longest first, and the longest row of all moved to the very front, so the first batch
    /// is the largest (an out-of-memory error shows at once).
    ByLength { seed: u64 },
}

/// The order [`Sampler::ByLength`] draws: `lengths[i]` is row `i`'s length.
pub fn length_grouped_order(lengths: &[usize], batch_size: usize, rng: &mut StdRng) -> Vec<usize> {
    let batch_size = batch_size.max(1);
    let mut order: Vec<usize> = (0..lengths.len()).collect();
    order.shuffle(rng);
    let multiple = (lengths.len() / (4 * batch_size)).clamp(1, 50);
    let mut megabatches: Vec<Vec<usize>> = order
        .chunks(multiple * batch_size)
        .map(|chunk| {
            let mut mb = chunk.to_vec();
            // Stable, like Python's `sorted(..., reverse=True)`.
            mb.sort_by(|&a, &b| lengths[b].cmp(&lengths[a]));
            mb
        })
        .collect();
    // The first megabatch whose head is the longest (torch.argmax returns the first maximum).
    let mut longest = 0;
    for (i, mb) in megabatches.iter().enumerate() {
        if lengths[mb[0]] > lengths[megabatches[longest][0]] {
            longest = i;
        }
    }
    if longest != 0 {
        let head = megabatches[longest][0];
        megabatches[longest][0] = megabatches[0][0];
        megabatches[0][0] = head;
    }
    megabatches.concat()
}

/// Rank `rank`'s share of `rows` among `world` ranks: the rows padded to a multiple of
/// `world` by repeating the first ones (as PyTorch's `DistributedSampler` pads), then one
/// contiguous slice per rank, so every rank takes as many rows (and steps), and the slices
/// put back in rank order start with `rows` in order.
pub fn shard(rows: &[usize], rank: usize, world: usize) -> Vec<usize> {
    let per_rank = rows.len().div_ceil(world.max(1));
    let padded: Vec<usize> = rows
        .iter()
        .copied()
        .cycle()
        .take(per_rank * world)
        .collect();
    padded[rank * per_rank..(rank + 1) * per_rank].to_vec()
}
