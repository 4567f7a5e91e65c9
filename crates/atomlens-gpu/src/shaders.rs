//! The WGSL sources (under `shaders/`), compiled into the crate.

/// Non-local means.
pub(crate) const NLM: &str = include_str!("../shaders/nlm.wgsl");
/// Levenberg–Marquardt column fits.
pub(crate) const FIT: &str = include_str!("../shaders/fit.wgsl");
/// The Joseph projector and its adjoint (SIRT fused in).
pub(crate) const PROJECT: &str = include_str!("../shaders/project.wgsl");

#[cfg(test)]
mod tests {
    /// Every shader parses and validates with naga (what wgpu runs them through), no GPU needed.
    #[test]
    fn every_shader_validates() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("shaders");
        let mut seen = 0;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().and_then(|e| e.to_str()) != Some("wgsl") {
                continue;
            }
            let source = std::fs::read_to_string(&path).unwrap();
            let module = naga::front::wgsl::parse_str(&source)
                .unwrap_or_else(|e| panic!("{}: {}", path.display(), e.emit_to_string(&source)));
            naga::valid::Validator::new(naga::valid::ValidationFlags::all(), naga::valid::Capabilities::default())
                .validate(&module)
                .unwrap_or_else(|e| panic!("{}: {}", path.display(), e.emit_to_string(&source)));
            seen += 1;
        }
        assert_eq!(seen, 3, "every file under shaders/ is one of the crate's kernels");
    }
}
