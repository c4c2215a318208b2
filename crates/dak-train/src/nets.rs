//! The networks one ablation trains, in one var store: `G.*`, `G_sma.*`
//! (G′), `G_dma.*` (G″), `D_str.*`, `D_dyn.*`.

use dak_model::{DynamicDiscriminator, Estimator, ModelConfig, StructuralDiscriminator};
use tch::nn::VarStore;
use tch::{Device, Kind};

use crate::config::{Ablation, Precision};

pub struct Nets {
    pub vs: VarStore,
    pub g: Estimator,
    pub g_sma: Option<Estimator>,
    pub g_dma: Option<Estimator>,
    pub d_str: Option<StructuralDiscriminator>,
    pub d_dyn: Option<DynamicDiscriminator>,
}

impl std::fmt::Debug for Nets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Nets").field("variables", &self.vs.len()).finish()
    }
}

impl Nets {
    pub fn new(model: &ModelConfig, ablation: Ablation, precision: Precision, device: Device) -> Nets {
        let mut vs = VarStore::new(device);
        let root = vs.root();
        let (c, t) = (model.channels as i64, model.frames as i64);
        let g = Estimator::new(&(&root / "G"), model);
        let g_sma = ablation.structural_adversary().then(|| Estimator::new(&(&root / "G_sma"), model));
        let g_dma = ablation.dynamic_adversary().then(|| Estimator::new(&(&root / "G_dma"), model));
        let d_str = ablation.structural_adversary().then(|| StructuralDiscriminator::new(&(&root / "D_str"), c));
        let d_dyn = ablation.dynamic_adversary().then(|| DynamicDiscriminator::new(&(&root / "D_dyn"), c, t));
        if precision == Precision::Bf16 {
            vs.set_kind(Kind::BFloat16);
        }
        Nets { vs, g, g_sma, g_dma, d_str, d_dyn }
    }

    /// The activation kind the model runs in.
    pub fn kind(&self) -> Kind {
        self.vs.variables().values().next().map_or(Kind::Float, |t| t.kind())
    }
}
