//! A first tour of the engine from Rust: exact gradient, Jacobian and Hessian, each beside a
//! central-difference estimate. Run with `cargo run --release -p duals --example quickstart`.

use duals::{Config, DualNum, ScalarFunction, VectorFunction};

/// The extended Rosenbrock function, written once for every number type.
struct Rosenbrock;

impl ScalarFunction<f64> for Rosenbrock {
    #[inline(always)]
    fn eval<D: DualNum<f64>>(&self, x: &[D]) -> D {
        x.windows(2)
            .map(|w| (-w[0] + 1.0).powi(2) + (w[1] - w[0] * w[0]).powi(2) * 100.0)
            .sum()
    }
}

/// The Robertson chemical kinetics system, a classic stiff ODE right-hand side.
struct Robertson {
    k1: f64,
    k2: f64,
    k3: f64,
}

impl VectorFunction<f64> for Robertson {
    #[inline(always)]
    fn eval<D: DualNum<f64>>(&self, y: &[D], dy: &mut [D]) {
        dy[0] = y[0] * -self.k1 + y[1] * y[2] * self.k3;
        dy[1] = y[0] * self.k1 - y[1] * y[2] * self.k3 - y[1] * y[1] * self.k2;
        dy[2] = y[1] * y[1] * self.k2;
    }
}

/// Central difference of a scalar function along coordinate `j`.
fn central(f: impl Fn(&[f64]) -> f64, x: &[f64], j: usize, h: f64) -> f64 {
    let (mut xp, mut xm) = (x.to_vec(), x.to_vec());
    xp[j] += h;
    xm[j] -= h;
    (f(&xp) - f(&xm)) / (2.0 * h)
}

fn max_abs_diff(a: &[f64], b: &[f64]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f64::max)
}

fn main() -> Result<(), duals::Error> {
    let mut cfg = Config::new();

    // Gradient of Rosenbrock at n = 6.
    let x = [-1.2, 1.0, -0.5, 0.3, 0.8, 1.1];
    let g = duals::gradient(&Rosenbrock, &x, &mut cfg)?;
    let f = |x: &[f64]| Rosenbrock.eval(x);
    let g_fd: Vec<f64> = (0..x.len()).map(|j| central(f, &x, j, 1e-6)).collect();
    println!("gradient of Rosenbrock (n = 6):  {g:.6?}");
    println!(
        "  max |exact - central difference| = {:.1e}",
        max_abs_diff(&g, &g_fd)
    );

    // Jacobian of Robertson.
    let rober = Robertson {
        k1: 0.04,
        k2: 3e7,
        k3: 1e4,
    };
    let y = [0.9, 3e-5, 0.1];
    let j = duals::jacobian(&rober, &y, &mut cfg)?;
    println!("Jacobian of Robertson at {y:?}:");
    for i in 0..3 {
        let row: Vec<String> = j.row(i).iter().map(|v| format!("{v:>12.4e}")).collect();
        println!("  {}", row.join(" "));
    }

    // Hessian of Rosenbrock at n = 4: exact and symmetric.
    let x4 = [1.0, 1.0, 1.0, 1.0];
    let h = duals::hessian(&Rosenbrock, &x4, &mut cfg)?;
    println!("Hessian of Rosenbrock at the minimum (n = 4):");
    for i in 0..4 {
        let row: Vec<String> = h.row(i).iter().map(|v| format!("{v:>7.1}")).collect();
        println!("  {}", row.join(" "));
    }
    Ok(())
}
