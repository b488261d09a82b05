//! The server's command line read as its flag library (cobra's pflag) reads it: `--flag value` and
//! `--flag=value`, a bool flag alone meaning true and `--flag=false` false, the last occurrence
//! winning, nothing after `--`.

/// The value of the last `--flag value` or `--flag=value`.
pub fn value(args: &[String], flag: &str) -> Option<String> {
    let mut found = None;
    let mut words = flags(args).iter();
    while let Some(a) = words.next() {
        if a == flag {
            found = words.next().cloned();
        } else if let Some(v) = a.strip_prefix(flag).and_then(|r| r.strip_prefix('=')) {
            found = Some(v.to_string());
        }
    }
    found
}

/// The last `--flag` (true) or `--flag=BOOL` (as Go's strconv.ParseBool reads BOOL); a value
/// pflag would refuse makes the flag unknown (None), as the server would not start with it.
pub fn boolean(args: &[String], flag: &str) -> Option<bool> {
    let mut found = None;
    for a in flags(args) {
        if a == flag {
            found = Some(true);
        } else if let Some(v) = a.strip_prefix(flag).and_then(|r| r.strip_prefix('=')) {
            found = match v {
                "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
                "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
                _ => None,
            };
        }
    }
    found
}

fn flags(args: &[String]) -> &[String] {
    match args.iter().position(|a| a == "--") {
        Some(end) => &args[..end],
        None => args,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(text: &str) -> Vec<String> {
        text.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn reads_flags_as_pflag_does() {
        assert_eq!(boolean(&args("--port 8080 --read-only"), "--read-only"), Some(true));
        assert_eq!(boolean(&args("--read-only --read-only=false"), "--read-only"), Some(false));
        assert_eq!(boolean(&args("--read-only=False --read-only=1"), "--read-only"), Some(true));
        assert_eq!(boolean(&args("--port 8080"), "--read-only"), None);
        assert_eq!(boolean(&args("-- --read-only"), "--read-only"), None);
        assert_eq!(value(&args("--port 8080 --port=9090"), "--port").as_deref(), Some("9090"));
        assert_eq!(value(&args("--port=9090 --port 8181"), "--port").as_deref(), Some("8181"));
        assert_eq!(value(&args("--portx 1"), "--port"), None);
    }
}
