//! Inference without candle: the trained weights copied into plain vectors and the LSTM step
//! written out. A candle forward pass costs about ten tensor ops (each an allocation) per time step,
//! hundreds of microseconds per forecast; this mirror does the same arithmetic in a few tens of
//! microseconds. Tests check it against the candle forward pass.
use super::init::flat;
use candle_nn::VarMap;

/// One LSTM layer's weights (candle/PyTorch layout: gates i, f, g, o stacked by rows).
#[derive(Debug, Clone)]
pub(crate) struct Cell {
    input: usize,
    hidden: usize,
    w_ih: Vec<f32>,
    w_hh: Vec<f32>,
    bias: Vec<f32>,
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

fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
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
        Ok(Self {
            input,
            hidden,
            w_ih: flat(map, &format!("{prefix}.weight_ih_l0"))?,
            w_hh: flat(map, &format!("{prefix}.weight_hh_l0"))?,
            bias: b_ih.iter().zip(&b_hh).map(|(a, b)| a + b).collect(),
        })
    }

    /// Runs the sequence `xs` (rows of `input` values) from a zero state; returns the last h.
    pub(crate) fn run(&self, xs: &[f32]) -> Vec<f32> {
        let h_n = self.hidden;
        let mut h = vec![0f32; h_n];
        let mut c = vec![0f32; h_n];
        let mut z = vec![0f32; 4 * h_n];
        for x in xs.chunks_exact(self.input) {
            for (r, zr) in z.iter_mut().enumerate() {
                *zr = self.bias[r]
                    + dot(&self.w_ih[r * self.input..(r + 1) * self.input], x)
                    + dot(&self.w_hh[r * h_n..(r + 1) * h_n], &h);
            }
            for j in 0..h_n {
                let i = sigmoid(z[j]);
                let f = sigmoid(z[h_n + j]);
                let g = z[2 * h_n + j].tanh();
                let o = sigmoid(z[3 * h_n + j]);
                c[j] = f * c[j] + i * g;
                h[j] = o * c[j].tanh();
            }
        }
        h
    }
}

impl Dense {
    /// Reads `prefix.weight` / `prefix.bias`.
    pub(crate) fn from_varmap(map: &VarMap, prefix: &str, input: usize) -> candle_core::Result<Self> {
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
