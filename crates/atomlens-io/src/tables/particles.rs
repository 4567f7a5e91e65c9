//! Particle, counting and identical-location tables (CSV, JSON, XYZ), shared by the CLI and the
//! page so both export the same files. Positions in px (x column, y row) as in the column CSV;
//! lengths and areas also in the image's unit where it is calibrated.
use std::fmt::Write;

use atomlens_core::Calibration;
use atomlens_core::particles::chain::{Analysis, AnalysisParams};
use atomlens_core::particles::compare::Comparison;
use atomlens_core::particles::counting::{stack_atoms, xyz};

fn site_name<T: serde::Serialize>(v: T) -> String {
    serde_json::to_value(v).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default()
}

/// One row per particle: size, shape, columns and counts.
pub fn particles_csv(a: &Analysis, cal: &Calibration) -> String {
    let u = &cal.unit;
    let mut s = format!(
        "particle,area_px2,area_{u}2,equivalent_diameter_{u},centroid_x,centroid_y,aspect_ratio,orientation_deg,\
         touches_border,lattice,lattice_spacing_px,columns,surface_columns,edge_columns,facets,atoms,atoms_sd,ordered_fraction,\
         ordered_fraction_sd,ordered_domains,counting_note\n"
    );
    let px = cal.pixel_size;
    for r in &a.particles {
        let q = &r.particle;
        let sites = |k: atomlens_core::particles::segment::Site| r.columns.sites.iter().filter(|&&s| s == k).count();
        let _ = writeln!(
            s,
            "{},{:.0},{:.5},{:.5},{:.3},{:.3},{:.4},{:.3},{},{},{},{},{},{},{},{},{},{:.4},{:.4},{},\"{}\"",
            q.id,
            q.area,
            q.area * px * px,
            q.equivalent_diameter * px,
            q.centroid[0],
            q.centroid[1],
            q.aspect_ratio,
            q.orientation.to_degrees(),
            q.touches_border,
            site_name(r.lattice.kind),
            r.lattice.spacing.map(|d| format!("{d:.3}")).unwrap_or_default(),
            r.columns.columns.len(),
            sites(atomlens_core::particles::segment::Site::Surface),
            sites(atomlens_core::particles::segment::Site::Edge),
            r.columns.facets.len(),
            r.atoms.iter().map(|&n| n as u64).sum::<u64>(),
            r.atom_total().map(|(_, sd)| format!("{sd:.1}")).unwrap_or_default(),
            r.ordering.ordered_fraction,
            r.ordering.ordered_fraction_sd,
            r.ordering.domains.len(),
            r.counting_error.clone().unwrap_or_default().replace('"', "'")
        );
    }
    s
}

/// One row per column of every particle: site, cross-section, atoms and ordering; `count_from`
/// says whether a column was counted by its own cross-section or its neighbours' thickness.
pub fn particle_columns_csv(a: &Analysis) -> String {
    let mut s = String::from(
        "particle,column,x,y,site,cross_section,atoms,count_probability,kind,contrast,ordered,misfit,count_from\n",
    );
    for r in &a.particles {
        for (k, &i) in r.columns.columns.iter().enumerate() {
            let c = &a.columns.columns[i];
            let atoms = r.atoms.get(k).map(|n| n.to_string()).unwrap_or_default();
            let prob = r.count_probability.get(k).map(|p| format!("{p:.3}")).unwrap_or_default();
            let _ = writeln!(
                s,
                "{},{},{:.4},{:.4},{},{:.6e},{},{},{},{:.4},{},{},{}",
                r.particle.id,
                i,
                c.x,
                c.y,
                site_name(r.columns.sites[k]),
                r.cross_sections[k],
                atoms,
                prob,
                site_name(r.ordering.kind[k]),
                r.ordering.contrast[k],
                r.ordering.ordered[k],
                r.defects.misfit[k],
                if r.from_neighbours(k) { "neighbours" } else { "cross_section" }
            );
        }
    }
    s
}

/// One row per defect (missing or extra column) and per misfit region (stacking fault or twin,
/// at its centroid, with its length and width in px), with the columns involved (`;`-separated).
pub fn defects_csv(a: &Analysis) -> String {
    let mut s = String::from("particle,kind,x,y,length_px,width_px,columns\n");
    let joined = |c: &[usize]| c.iter().map(|c| c.to_string()).collect::<Vec<_>>().join(";");
    for r in &a.particles {
        for d in &r.defects.defects {
            let _ =
                writeln!(s, "{},{},{:.3},{:.3},,,{}", r.particle.id, site_name(d.kind), d.x, d.y, joined(&d.columns));
        }
        for g in &r.defects.regions {
            let n = g.columns.len() as f64;
            let (x, y) = g
                .columns
                .iter()
                .fold((0.0, 0.0), |p, &i| (p.0 + a.columns.columns[i].x / n, p.1 + a.columns.columns[i].y / n));
            let _ = writeln!(
                s,
                "{},{},{x:.3},{y:.3},{:.3},{:.3},{}",
                r.particle.id,
                site_name(g.kind),
                g.length,
                g.width,
                joined(&g.columns)
            );
        }
    }
    s
}

/// One row per facet trace.
pub fn facets_csv(a: &Analysis, cal: &Calibration) -> String {
    let u = &cal.unit;
    let mut s = format!("particle,facet,x0,y0,x1,y1,length_px,length_{u},angle_deg,angle_to_lattice_deg,columns\n");
    for r in &a.particles {
        for (k, f) in r.columns.facets.iter().enumerate() {
            let _ = writeln!(
                s,
                "{},{},{:.3},{:.3},{:.3},{:.3},{:.3},{:.5},{:.2},{},{}",
                r.particle.id,
                k,
                f.from[0],
                f.from[1],
                f.to[0],
                f.to[1],
                f.length,
                f.length * cal.pixel_size,
                f.angle,
                f.angle_to_lattice.map(|v| format!("{v:.2}")).unwrap_or_default(),
                f.columns.len()
            );
        }
    }
    s
}

/// The counted columns of every particle stacked about the mid-plane as XYZ (Å). `beam_step_nm`
/// is the atom spacing along the beam (Pt \[110\]: 0.2775 nm). `None` when nothing was counted or
/// the image is not calibrated in nm.
pub fn model_xyz(a: &Analysis, cal: &Calibration, beam_step_nm: f64, element: &str) -> Option<String> {
    if cal.unit != "nm" {
        return None;
    }
    let (pts, atoms) = a.counted_columns();
    if atoms.iter().all(|&n| n == 0) {
        return None;
    }
    let model = stack_atoms(&pts, &atoms, cal.pixel_size * 10.0, beam_step_nm * 10.0);
    Some(xyz(&model, element, &format!("atomlens {} starting model, Å", env!("CARGO_PKG_VERSION"))))
}

/// The run in one JSON document (particles, counts, ordering, parameters).
pub fn analysis_json(a: &Analysis, p: &AnalysisParams, cal: &Calibration, source: &str) -> String {
    serde_json::to_string_pretty(&serde_json::json!({
        "source": source,
        "software": concat!("atomlens ", env!("CARGO_PKG_VERSION")),
        "units": "px (x column, y row, pixel centres at integers); cross-sections in image units × px",
        "calibration": cal,
        "parameters": p,
        "spacing_px": a.spacing,
        "segmentation": { "threshold": a.segmentation.threshold, "smoothing_px": a.segmentation.smoothing },
        "particles": a.particles,
    }))
    .unwrap_or_default()
}

/// Identical-location comparison: one row per column.
pub fn compare_columns_csv(c: &Comparison) -> String {
    let mut s = String::from(
        "status,x,y,before,after,dx,dy,atoms_before,atoms_after,d_atoms,d_atoms_sd,d_cross_section,exx,eyy,exy\n",
    );
    let idx = |v: Option<usize>| v.map(|i| i.to_string()).unwrap_or_default();
    for k in &c.columns {
        let _ = writeln!(
            s,
            "{},{:.4},{:.4},{},{},{:.4},{:.4},{},{},{},{:.3},{:.5e},{:.5},{:.5},{:.5}",
            k.status.as_str(),
            k.x,
            k.y,
            idx(k.before),
            idx(k.after),
            k.dx,
            k.dy,
            k.atoms_before,
            k.atoms_after,
            k.atoms_after as i64 - k.atoms_before as i64,
            k.d_atoms_sd,
            k.d_cross_section,
            k.strain[0],
            k.strain[1],
            k.strain[2]
        );
    }
    s
}

/// Identical-location comparison: one row per facet of the before particle.
pub fn compare_facets_csv(c: &Comparison, cal: &Calibration) -> String {
    let u = &cal.unit;
    let mut s =
        format!("facet,angle_deg,length_{u},atoms_lost,atoms_gained,net_atoms,net_sd,columns_lost,columns_new\n");
    for f in &c.facets {
        let _ = writeln!(
            s,
            "{},{:.2},{:.4},{},{},{},{:.2},{},{}",
            f.facet,
            f.angle,
            f.length * cal.pixel_size,
            f.atoms_lost,
            f.atoms_gained,
            f.atoms_gained as i64 - f.atoms_lost as i64,
            f.net_sd,
            f.columns_lost,
            f.columns_new
        );
    }
    s
}

/// Identical-location comparison: transform and totals.
pub fn compare_summary_json(c: &Comparison, cal: &Calibration, before: &str, after: &str) -> String {
    serde_json::to_string_pretty(&serde_json::json!({
        "before": before,
        "after": after,
        "software": concat!("atomlens ", env!("CARGO_PKG_VERSION")),
        "calibration": cal,
        "transform": c.transform,
        "summary": c.summary,
        "facets": c.facets,
    }))
    .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use atomlens_core::particles::chain::analyse;
    use atomlens_core::synth::{NanoparticleParams, nanoparticle};

    #[test]
    fn tables_have_one_row_per_item_and_matching_columns() {
        let s = nanoparticle(&NanoparticleParams {
            size: 256,
            diameter_nm: 3.0,
            support_ripple: 0.05,
            ..Default::default()
        })
        .unwrap();
        let a = analyse(s.image.view(), &AnalysisParams::default()).unwrap();
        let cal = &s.image.calibration;
        for (csv, rows) in [
            (particles_csv(&a, cal), a.particles.len()),
            (particle_columns_csv(&a), a.particles.iter().map(|r| r.columns.columns.len()).sum()),
            (facets_csv(&a, cal), a.particles.iter().map(|r| r.columns.facets.len()).sum()),
            (defects_csv(&a), a.particles.iter().map(|r| r.defects.defects.len() + r.defects.regions.len()).sum()),
        ] {
            let lines: Vec<&str> = csv.lines().collect();
            assert_eq!(lines.len(), rows + 1, "{csv}");
            let n = lines[0].split(',').count();
            assert!(lines.iter().all(|l| l.split(',').count() == n), "{csv}");
        }
        let model = model_xyz(&a, cal, 0.2775, "Pt").unwrap();
        let n: usize = model.lines().next().unwrap().parse().unwrap();
        assert_eq!(n, a.particles.iter().flat_map(|r| r.atoms.iter()).map(|&k| k as usize).sum::<usize>());
        assert!(analysis_json(&a, &AnalysisParams::default(), cal, "x").contains("\"particles\""));
    }
}
