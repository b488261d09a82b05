//! Platform names as containerd compares them (`arm64` = `arm64/v8`, `amd64` = `amd64/v1`,
//! `arm` = `arm/v7`), and the ELF machine a platform's binaries carry.

/// This machine's Linux platform: what `dev` builds and what a `--platform=$BUILDPLATFORM` stage
/// runs as here.
pub fn this_machine() -> &'static str {
    match std::env::consts::ARCH {
        "aarch64" => "linux/arm64",
        _ => "linux/amd64",
    }
}

/// `os/arch[/variant]` in containerd's normal form: architecture aliases resolved, the default
/// variant dropped (arm64, amd64) or added (arm).
pub fn normalize(platform: &str) -> String {
    let mut parts = platform.trim().split('/');
    let os = parts.next().unwrap_or_default().to_ascii_lowercase();
    let arch = parts.next().unwrap_or_default().to_ascii_lowercase();
    let variant = parts.next().unwrap_or_default().to_ascii_lowercase();
    let (arch, variant) = match (arch.as_str(), variant.as_str()) {
        ("aarch64" | "arm64", "" | "v8" | "8") => ("arm64", String::new()),
        ("aarch64" | "arm64", v) => ("arm64", with_v(v)),
        ("x86_64" | "x86-64" | "amd64", "" | "v1" | "1") => ("amd64", String::new()),
        ("x86_64" | "x86-64" | "amd64", v) => ("amd64", with_v(v)),
        ("armhf", _) => ("arm", "v7".into()),
        ("armel", _) => ("arm", "v6".into()),
        ("arm", "") => ("arm", "v7".into()),
        ("arm", v) => ("arm", with_v(v)),
        ("i386", v) => ("386", v.to_string()),
        (a, v) => (a, v.to_string()),
    };
    match variant.is_empty() {
        true => format!("{os}/{arch}"),
        false => format!("{os}/{arch}/{variant}"),
    }
}

fn with_v(variant: &str) -> String {
    match variant.starts_with('v') {
        true => variant.to_string(),
        false => format!("v{variant}"),
    }
}

/// The ELF `e_machine` of binaries for `arch` (normalized), with the word-size class (1: 32-bit,
/// 2: 64-bit).
pub fn elf_machine(arch: &str) -> Option<(u16, u8)> {
    Some(match arch {
        "amd64" => (62, 2),
        "arm64" => (183, 2),
        "arm" => (40, 1),
        "386" => (3, 1),
        "ppc64le" => (21, 2),
        "s390x" => (22, 2),
        "riscv64" => (243, 2),
        "mips64le" => (8, 2),
        "loong64" => (258, 2),
        _ => return None,
    })
}

/// What a user calls binaries with ELF machine `machine`.
pub fn machine_name(machine: u16) -> String {
    match machine {
        62 => "x86-64 (amd64)".into(),
        183 => "AArch64 (arm64)".into(),
        40 => "32-bit ARM (arm)".into(),
        3 => "Intel 80386 (386)".into(),
        21 => "PowerPC64 (ppc64le)".into(),
        22 => "IBM S/390 (s390x)".into(),
        243 => "RISC-V (riscv64)".into(),
        8 => "MIPS (mips64le)".into(),
        258 => "LoongArch (loong64)".into(),
        m => format!("ELF machine {m}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compares_as_containerd_does() {
        for (given, normal) in [
            ("linux/arm64/v8", "linux/arm64"),
            ("linux/arm64", "linux/arm64"),
            ("linux/aarch64", "linux/arm64"),
            ("linux/amd64/v1", "linux/amd64"),
            ("linux/x86_64", "linux/amd64"),
            ("linux/amd64/v3", "linux/amd64/v3"),
            ("linux/arm", "linux/arm/v7"),
            ("linux/arm/7", "linux/arm/v7"),
            ("linux/arm/v6", "linux/arm/v6"),
            ("linux/s390x", "linux/s390x"),
        ] {
            assert_eq!(normalize(given), normal, "{given}");
        }
    }
}
