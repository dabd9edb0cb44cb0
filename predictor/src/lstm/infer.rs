//! Inference without candle: the trained weights copied into plain vectors and the LSTM step
//! written out. A candle forward pass costs about ten tensor ops (each an allocation) per time step,
//! hundreds of microseconds per forecast; this mirror does the same arithmetic in a few tens of
//! microseconds: the weights are stored transposed so each step is a handful of contiguous
//! multiply-adds over the 4·H gate vector (which the compiler vectorises), and the gate
//! non-linearities use a polynomial `exp` that is within about 2e-7 relative of the exact one and
//! also vectorises. Tests check the result against the candle forward pass.
use super::init::flat;
use candle_nn::VarMap;

/// One LSTM layer's weights (candle/PyTorch gate order i, f, g, o), transposed: `w_ih_t[j]` is
/// the 4·H column that input `j` multiplies.
#[derive(Debug, Clone)]
pub(crate) struct Cell {
    input: usize,
    hidden: usize,
    w_ih_t: Vec<f32>,
    w_hh_t: Vec<f32>,
    bias: Vec<f32>,
}

/// `rows × cols` row-major into `cols × rows` row-major.
fn transpose(m: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    let mut t = vec![0f32; m.len()];
    for r in 0..rows {
        for c in 0..cols {
            t[c * rows + r] = m[r * cols + c];
        }
    }
    t
}

/// e^x for f32 by range reduction to |r| ≤ ln2/2 and a degree-6 polynomial (relative error about
/// 2e-7), written without calls or branches so loops over it vectorise.
#[inline(always)]
fn exp_approx(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_145_75;
    const LN2_LO: f32 = 1.428_606_8e-6;
    // 1.5·2^23: adding and subtracting it rounds to the nearest integer without a libm call.
    const MAGIC: f32 = 12_582_912.0;
    let x = x.clamp(-87.0, 88.0);
    let n = (x * LOG2E + MAGIC) - MAGIC;
    let r = x - n * LN2_HI - n * LN2_LO;
    let p = 1.0
        + r * (1.0
            + r * (0.5
                + r * (1.0 / 6.0 + r * (1.0 / 24.0 + r * (1.0 / 120.0 + r * (1.0 / 720.0))))));
    p * f32::from_bits(((n as i32 + 127) as u32) << 23)
}

#[inline(always)]
fn sigmoid_fast(x: f32) -> f32 {
    1.0 / (1.0 + exp_approx(-x))
}

#[inline(always)]
fn tanh_fast(x: f32) -> f32 {
    2.0 / (1.0 + exp_approx(-2.0 * x)) - 1.0
}

/// A dense layer `y = W x + b`.
#[derive(Debug, Clone)]
pub(crate) struct Dense {
    input: usize,
    w: Vec<f32>,
    b: Vec<f32>,
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    // Eight independent accumulators let the compiler vectorise the reduction.
    let mut acc = [0f32; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for i in 0..8 {
            acc[i] += x[i] * y[i];
        }
    }
    let mut s: f32 = acc.iter().sum();
    for (x, y) in ra.iter().zip(rb) {
        s += x * y;
    }
    s
}

impl Cell {
    /// Reads `prefix.weight_ih_l0` etc. from a VarMap.
    pub(crate) fn from_varmap(
        map: &VarMap,
        prefix: &str,
        input: usize,
        hidden: usize,
    ) -> candle_core::Result<Self> {
        let b_ih = flat(map, &format!("{prefix}.bias_ih_l0"))?;
        let b_hh = flat(map, &format!("{prefix}.bias_hh_l0"))?;
        let gates = 4 * hidden;
        let mut w_ih_t = transpose(&flat(map, &format!("{prefix}.weight_ih_l0"))?, gates, input);
        let mut w_hh_t = transpose(
            &flat(map, &format!("{prefix}.weight_hh_l0"))?,
            gates,
            hidden,
        );
        let mut bias: Vec<f32> = b_ih.iter().zip(&b_hh).map(|(a, b)| a + b).collect();
        // tanh(x) = 2·σ(2x) − 1: doubling the cell-gate rows lets one sigmoid loop cover all four
        // gates (one straight loop the compiler vectorises).
        let g = 2 * hidden..3 * hidden;
        for col in w_ih_t
            .chunks_exact_mut(gates)
            .chain(w_hh_t.chunks_exact_mut(gates))
        {
            for w in &mut col[g.clone()] {
                *w *= 2.0;
            }
        }
        for b in &mut bias[g] {
            *b *= 2.0;
        }
        Ok(Self {
            input,
            hidden,
            w_ih_t,
            w_hh_t,
            bias,
        })
    }

    /// Runs the sequence `xs` (rows of `input` values) from a zero state; returns the last h.
    pub(crate) fn run(&self, xs: &[f32]) -> Vec<f32> {
        let h_n = self.hidden;
        let gates = 4 * h_n;
        let mut h = vec![0f32; h_n];
        let mut c = vec![0f32; h_n];
        let mut z = vec![0f32; gates];
        for x in xs.chunks_exact(self.input) {
            z.copy_from_slice(&self.bias);
            for (col, &xj) in self.w_ih_t.chunks_exact(gates).zip(x) {
                for (zr, w) in z.iter_mut().zip(col) {
                    *zr += w * xj;
                }
            }
            for (col, &hj) in self.w_hh_t.chunks_exact(gates).zip(&h) {
                for (zr, w) in z.iter_mut().zip(col) {
                    *zr += w * hj;
                }
            }
            for v in z.iter_mut() {
                *v = sigmoid_fast(*v);
            }
            let (i, rest) = z.split_at(h_n);
            let (f, rest) = rest.split_at(h_n);
            let (g, o) = rest.split_at(h_n);
            // g holds σ(2x); the cell input is tanh(x) = 2σ(2x) − 1.
            for (((cj, fj), ij), gj) in c.iter_mut().zip(f).zip(i).zip(g) {
                *cj = fj * *cj + ij * (2.0 * gj - 1.0);
            }
            for ((hj, oj), cj) in h.iter_mut().zip(o).zip(&c) {
                *hj = oj * tanh_fast(*cj);
            }
        }
        h
    }
}

impl Dense {
    /// Reads `prefix.weight` / `prefix.bias`.
    pub(crate) fn from_varmap(
        map: &VarMap,
        prefix: &str,
        input: usize,
    ) -> candle_core::Result<Self> {
        Ok(Self {
            input,
            w: flat(map, &format!("{prefix}.weight"))?,
            b: flat(map, &format!("{prefix}.bias"))?,
        })
    }

    pub(crate) fn apply(&self, x: &[f32]) -> Vec<f32> {
        self.b
            .iter()
            .enumerate()
            .map(|(r, b)| b + dot(&self.w[r * self.input..(r + 1) * self.input], x))
            .collect()
    }
}

/// Softmax in place, stable.
pub(crate) fn softmax(v: &mut [f32]) {
    let m = v.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut s = 0.0;
    for x in v.iter_mut() {
        *x = (*x - m).exp();
        s += *x;
    }
    for x in v.iter_mut() {
        *x /= s;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_approx_is_accurate() {
        let mut x = -80.0f32;
        while x < 80.0 {
            let (a, e) = (exp_approx(x), x.exp());
            assert!(((a - e) / e).abs() < 1e-6, "{x}: {a} vs {e}");
            x += 0.0137;
        }
        assert!((tanh_fast(0.3) - 0.3f32.tanh()).abs() < 1e-6);
        assert_eq!(tanh_fast(-100.0), -1.0);
        assert!((sigmoid_fast(2.0) - 1.0 / (1.0 + (-2.0f32).exp())).abs() < 1e-6);
    }
}
