//! The continuous colour maps of every picture: viridis and plasma, given by eleven evenly
//! spaced stops (the explorer's JavaScript viridis uses the same stops).

use plotters::style::RGBColor;

/// A colour map given by evenly spaced stops.
pub struct ColourMap(&'static [(u8, u8, u8)]);

/// Viridis (token counts, activation strengths, colour bars).
pub const VIRIDIS: ColourMap = ColourMap(&[
    (0x44, 0x01, 0x54),
    (0x48, 0x24, 0x75),
    (0x41, 0x44, 0x87),
    (0x35, 0x5f, 0x8d),
    (0x2a, 0x78, 0x8e),
    (0x21, 0x91, 0x8c),
    (0x22, 0xa8, 0x84),
    (0x44, 0xbf, 0x70),
    (0x7a, 0xd1, 0x51),
    (0xbd, 0xdf, 0x26),
    (0xfd, 0xe7, 0x25),
]);

/// Plasma (edge weights).
pub const PLASMA: ColourMap = ColourMap(&[
    (0x0d, 0x08, 0x87),
    (0x41, 0x04, 0x9d),
    (0x6a, 0x00, 0xa8),
    (0x8f, 0x0d, 0xa4),
    (0xb1, 0x2a, 0x90),
    (0xcc, 0x47, 0x78),
    (0xe1, 0x64, 0x62),
    (0xf2, 0x84, 0x4b),
    (0xfc, 0xa6, 0x36),
    (0xfc, 0xce, 0x25),
    (0xf0, 0xf9, 0x21),
]);

impl ColourMap {
    /// The stops, lowest first.
    pub fn stops(&self) -> &'static [(u8, u8, u8)] {
        self.0
    }

    /// The colour at `x` in [0, 1] (clamped; a non-finite `x` reads as 0), linearly
    /// interpolated between stops.
    pub fn rgb(&self, x: f64) -> RGBColor {
        let stops = self.0;
        let x = if x.is_finite() {
            x.clamp(0.0, 1.0)
        } else {
            0.0
        };
        let pos = x * (stops.len() - 1) as f64;
        let i = (pos.floor() as usize).min(stops.len() - 2);
        let f = pos - i as f64;
        let mix = |a: u8, b: u8| (a as f64 + (b as f64 - a as f64) * f).round() as u8;
        let (a, b) = (stops[i], stops[i + 1]);
        RGBColor(mix(a.0, b.0), mix(a.1, b.1), mix(a.2, b.2))
    }

    /// [`ColourMap::rgb`] as `#rrggbb`.
    pub fn hex(&self, x: f64) -> String {
        let RGBColor(r, g, b) = self.rgb(x);
        format!("#{r:02x}{g:02x}{b:02x}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ends_middle_and_non_finite() {
        assert_eq!(VIRIDIS.hex(0.0), "#440154");
        assert_eq!(VIRIDIS.hex(1.0), "#fde725");
        assert_eq!(VIRIDIS.hex(0.5), "#21918c");
        assert_eq!(VIRIDIS.hex(2.0), "#fde725");
        assert_eq!(VIRIDIS.hex(f64::NAN), "#440154");
        assert_eq!(PLASMA.hex(f64::INFINITY), "#0d0887");
        // Halfway between the first two stops, rounded per channel.
        assert_eq!(VIRIDIS.rgb(0.05), RGBColor(0x46, 0x13, 0x65));
    }
}
