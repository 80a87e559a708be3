//! The CPU dropout (`model::layers::dropout`, its mask drawn by `csrc/dropout.cpp`) and the
//! training attention built on it (`model::layers::attend`) against libtorch's own kernels on
//! the same inputs and seed: the same values, the same gradients, bit for bit, and the default
//! generator left in the same state (what keeps a seeded run's figures unchanged).
//!
//! Every test here draws from the one default generator, so each holds `GENERATOR`.

use std::sync::Mutex;

use bert_finetune::model::layers::{attend, dropout};
use tch::{Device, Kind, Tensor};

static GENERATOR: Mutex<()> = Mutex::new(());

/// The default generator's next draws: equal only if two runs left it in the same state.
fn next_draws() -> Tensor {
    Tensor::rand([5], (Kind::Double, Device::Cpu))
}

#[test]
fn dropout_masks_are_libtorchs_at_every_size_and_leave_the_generator_where_it_does() {
    let _one_at_a_time = GENERATOR.lock().unwrap_or_else(|e| e.into_inner());
    // Sizes around the Mersenne Twister's 624-word state (two words an element), the shim's
    // 4,096-element chunks, and an attention block's probabilities.
    for &n in &[
        1, 311, 312, 313, 624, 625, 4095, 4096, 4097, 100_003, 777_600,
    ] {
        let x = Tensor::ones([n], (Kind::Float, Device::Cpu));
        for &p in &[0.1, 0.5, 0.9] {
            tch::manual_seed(n);
            let theirs = x.dropout(p, true);
            let after_theirs = next_draws();
            tch::manual_seed(n);
            let ours = dropout(&x, p, true);
            let after_ours = next_draws();
            assert!(ours.equal(&theirs), "n {n}, p {p}: different masks");
            assert!(
                after_ours.equal(&after_theirs),
                "n {n}, p {p}: generator moved"
            );
        }
    }
}

#[test]
fn dropout_equals_libtorchs_values_gradients_and_generator_state() {
    let _one_at_a_time = GENERATOR.lock().unwrap_or_else(|e| e.into_inner());
    let grad_of = |f: &dyn Fn(&Tensor) -> Tensor, x: &Tensor| {
        let x = x.detach().set_requires_grad(true);
        let y = f(&x);
        let weights = Tensor::arange(y.numel() as i64, (Kind::Float, Device::Cpu))
            .reshape(y.size())
            .sin();
        (&y * weights).sum(Kind::Float).backward();
        (y.detach(), x.grad())
    };
    let x = Tensor::randn([4, 37, 384], (Kind::Float, Device::Cpu));
    // Contiguous, and a transposed view (libtorch's noise then follows the view's strides).
    for input in [x.shallow_clone(), x.transpose(0, 1)] {
        for &p in &[0.1, 0.5] {
            tch::manual_seed(7);
            let (theirs, their_grad) = grad_of(&|x| x.dropout(p, true), &input);
            let after_theirs = next_draws();
            tch::manual_seed(7);
            let (ours, our_grad) = grad_of(&|x| dropout(x, p, true), &input);
            let after_ours = next_draws();
            assert!(ours.equal(&theirs), "p {p}: values differ");
            assert!(our_grad.equal(&their_grad), "p {p}: gradients differ");
            assert!(after_ours.equal(&after_theirs), "p {p}: generator moved");
        }
    }
    // Evaluation, p = 0: the input itself.
    assert!(dropout(&x, 0.1, false).equal(&x));
    assert!(dropout(&x, 0.0, true).equal(&x));
}

/// q, k, v as a layer makes them: views of one `[batch, width, heads, head_dim]` each,
/// transposed to `[batch, heads, width, head_dim]`, with gradients.
fn qkv(seed: i64) -> (Tensor, Tensor, Tensor, Tensor) {
    tch::manual_seed(seed);
    let base = Tensor::randn([3, 23, 3, 4, 8], (Kind::Float, Device::Cpu)).set_requires_grad(true);
    let parts = base.unbind(2);
    let t = |x: &Tensor| x.transpose(1, 2);
    (t(&parts[0]), t(&parts[1]), t(&parts[2]), base)
}

#[test]
fn training_attention_equals_libtorchs_sdpa_bit_for_bit() {
    let _one_at_a_time = GENERATOR.lock().unwrap_or_else(|e| e.into_inner());
    // Padding keys in two of the three rows.
    let lengths = Tensor::from_slice(&[23i64, 17, 5]);
    let mask = Tensor::arange(23, (Kind::Int64, Device::Cpu))
        .unsqueeze(0)
        .lt_tensor(&lengths.unsqueeze(1))
        .view([3, 1, 1, 23]);
    let bias = Tensor::randn([3, 4, 23, 23], (Kind::Float, Device::Cpu))
        .masked_fill(&mask.logical_not(), f64::from(f32::MIN));
    let upstream = Tensor::randn([3, 4, 23, 8], (Kind::Float, Device::Cpu));
    let run = |ours: bool, bias: Option<&Tensor>, scale: Option<f64>| {
        let (q, k, v, base) = qkv(3);
        tch::manual_seed(11);
        let out = if ours {
            attend((&q, &k, &v), &mask, scale, bias, 0.1, true, false).0
        } else {
            Tensor::scaled_dot_product_attention(
                &q,
                &k,
                &v,
                Some(bias.unwrap_or(&mask)),
                0.1,
                false,
                scale,
                false,
            )
        };
        (&out * &upstream).sum(Kind::Float).backward();
        (out.detach(), base.grad(), next_draws())
    };
    for (bias, scale) in [(None, None), (Some(&bias), Some(0.2))] {
        let (theirs, their_grad, their_next) = run(false, bias, scale);
        let (ours, our_grad, our_next) = run(true, bias, scale);
        assert!(
            ours.equal(&theirs),
            "bias {}: outputs differ",
            bias.is_some()
        );
        assert!(
            our_grad.equal(&their_grad),
            "bias {}: gradients differ",
            bias.is_some()
        );
        assert!(
            our_next.equal(&their_next),
            "bias {}: generator moved",
            bias.is_some()
        );
    }
}
