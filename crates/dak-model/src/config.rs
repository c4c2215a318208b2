use serde::{Deserialize, Serialize};

/// Architecture of one estimator (G, G′ and G″ share it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ModelConfig {
    /// Clip length T.
    pub frames: usize,
    pub joints: usize,
    /// Feature width C.
    pub channels: usize,
    /// Transformer blocks of both encoders together (L): ⌈L/2⌉ structural
    /// and ⌊L/2⌋ dynamic. This reading of the paper lands on every row of
    /// Table 7 (34.1 M at L=4, C=512; ±2.2 M a block; ARCHITECTURE.md).
    pub encoder_layers: usize,
    /// Spatial→temporal block pairs of the decoder (K).
    pub decoder_layers: usize,
    pub heads: usize,
    pub mlp_ratio: usize,
    pub dropout: f64,
}

impl Default for ModelConfig {
    fn default() -> Self {
        ModelConfig {
            frames: 27,
            joints: dak_core::NUM_JOINTS,
            channels: 512,
            encoder_layers: 4,
            decoder_layers: 6,
            heads: 8,
            mlp_ratio: 2,
            dropout: 0.0,
        }
    }
}

impl ModelConfig {
    pub fn validate(&self) -> Result<(), String> {
        if self.joints != dak_core::NUM_JOINTS {
            return Err(format!(
                "joints {}: the estimator works on the {} Human3.6M joints",
                self.joints,
                dak_core::NUM_JOINTS
            ));
        }
        if self.frames == 0 || self.channels == 0 || self.heads == 0 || self.mlp_ratio == 0 {
            return Err(format!("sizes must be positive: {self:?}"));
        }
        if !self.channels.is_multiple_of(self.heads) {
            return Err(format!("channels {} are not divisible by {} heads", self.channels, self.heads));
        }
        if self.encoder_layers < 2 {
            return Err(format!(
                "encoder_layers {} must be at least 2: they are split between the structural and the dynamic encoder",
                self.encoder_layers
            ));
        }
        if !(0.0..1.0).contains(&self.dropout) {
            return Err(format!("dropout {} is not in [0, 1)", self.dropout));
        }
        Ok(())
    }
}
