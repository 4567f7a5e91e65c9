//! Parsers for option values. Enum options parse into the core's own enums by their serde
//! names (`-` may stand for `_`), so a name is spelled once, in the core.
use atomlens_core::image::Region;
use serde::de::DeserializeOwned;

/// The core enum variant called `s` (its serde name).
pub fn serde_name<T: DeserializeOwned>(s: &str) -> Result<T, String> {
    let name = s.trim().replace('-', "_");
    serde_json::from_value(serde_json::Value::String(name)).map_err(|e| {
        // serde says "unknown variant `x`, expected one of `a`, `b`": keep the list.
        let e = e.to_string();
        e.split_once(", expected").map_or(e.clone(), |(_, rest)| format!("'{s}' is not one of{rest}"))
    })
}

fn numbers(s: &str, n: usize) -> Result<Vec<f64>, String> {
    let v: Vec<f64> = s
        .split(',')
        .map(|t| t.trim().parse::<f64>().map_err(|_| format!("'{t}' is not a number")))
        .collect::<Result<_, _>>()?;
    if v.len() != n || v.iter().any(|x| !x.is_finite()) {
        return Err(format!("expected {n} comma-separated numbers, got '{s}'"));
    }
    Ok(v)
}

/// `a,b`.
pub fn pair(s: &str) -> Result<[f64; 2], String> {
    let v = numbers(s, 2)?;
    Ok([v[0], v[1]])
}

/// `x0,y0,x1,y1` in px.
pub fn region(s: &str) -> Result<Region, String> {
    let v = numbers(s, 4)?;
    if v.iter().any(|&x| x < 0.0) {
        return Err(format!("region '{s}' has a negative coordinate"));
    }
    let u = |x: f64| x.round() as usize;
    Ok(Region { x0: u(v[0]), y0: u(v[1]), x1: u(v[2]), y1: u(v[3]) })
}

/// A region given as the list `[x0, y0, x1, y1]` (px) where options are read from JSON.
pub fn region_list<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Region>, D::Error> {
    let v: Option<Vec<f64>> = serde::Deserialize::deserialize(d)?;
    v.map(|v| {
        let text = v.iter().map(f64::to_string).collect::<Vec<_>>().join(",");
        region(&text).map_err(serde::de::Error::custom)
    })
    .transpose()
}

#[cfg(test)]
mod tests {
    use super::*;
    use atomlens_core::image::Noise;
    use atomlens_core::tomo::fbp::Filter;

    #[test]
    fn enums_parse_by_their_serde_names() {
        assert_eq!(serde_name::<Noise>("poisson"), Ok(Noise::Poisson));
        assert_eq!(serde_name::<Filter>("shepp-logan"), Ok(Filter::SheppLogan));
        let e = serde_name::<Noise>("laplace").unwrap_err();
        assert!(e.contains("laplace") && e.contains("poisson"), "{e}");
    }
}
