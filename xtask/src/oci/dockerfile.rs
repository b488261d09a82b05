//! The fork's Dockerfile as `image` hands it to buildx: its stages read (base image, user), and Go's
//! module and build caches mounted into the shell-form `RUN` steps of stages built from a Go
//! toolchain image (BuildKit keeps `--mount=type=cache` directories between builds). The paths are
//! set for the step (`GOMODCACHE`, `GOCACHE`), not guessed from the image. Anything else passes
//! through as it is, each with the reason.

/// Where a stage starts from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Base {
    /// An image in a registry, as written (global `ARG` defaults filled in).
    Image(String),
    /// An earlier stage, by index.
    Stage(usize),
    Scratch,
    /// A reference that still holds a variable after the global `ARG` defaults.
    Unresolved(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stage {
    pub name: Option<String>,
    pub base: Base,
}

/// What is known of a stage's base image: whether it is a Go toolchain (and why), and its user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BaseImage {
    pub go: Option<String>,
    pub user: String,
}

/// The Dockerfile handed to buildx and, a line each, what was done to it and why.
#[derive(Debug)]
pub struct Transformed {
    pub text: String,
    pub notes: Vec<String>,
    pub mounted: usize,
}

pub const MOD_CACHE: &str = "/kmcp-cache/go-mod";
pub const BUILD_CACHE: &str = "/kmcp-cache/go-build";

/// The instructions: (first physical line's index, keyword upper-cased, the rest of the logical
/// line). None when the file uses heredocs, whose bodies are not instructions.
fn instructions(text: &str) -> Option<Vec<(usize, String, String)>> {
    let escape = text
        .lines()
        .take_while(|l| l.trim_start().starts_with('#'))
        .find_map(|l| l.trim_start_matches('#').trim().strip_prefix("escape="))
        .and_then(|e| e.trim().chars().next())
        .unwrap_or('\\');
    let mut out: Vec<(usize, String, String)> = Vec::new();
    let mut open = false;
    for (i, line) in text.lines().enumerate() {
        let trimmed = line.trim();
        if trimmed.starts_with('#') || (trimmed.is_empty() && !open) {
            continue;
        }
        let body = trimmed.strip_suffix(escape).unwrap_or(trimmed);
        if open {
            if let Some(last) = out.last_mut() {
                last.2.push(' ');
                last.2.push_str(body.trim());
            }
        } else {
            let (keyword, rest) = body.split_once(char::is_whitespace).unwrap_or((body, ""));
            out.push((i, keyword.to_uppercase(), rest.trim().to_string()));
        }
        open = trimmed.ends_with(escape);
    }
    let heredoc = out.iter().any(|(_, k, rest)| {
        matches!(k.as_str(), "RUN" | "COPY" | "ADD")
            && rest.split_whitespace().any(|w| w.starts_with("<<") && w.len() > 2 && !w.starts_with("<<<"))
    });
    (!heredoc).then_some(out)
}

/// The stages, in order. Global `ARG NAME=default` lines before the first `FROM` fill `$NAME`
/// and `${NAME}` in a base reference.
pub fn stages(text: &str) -> Vec<Stage> {
    let mut globals: Vec<(String, String)> = Vec::new();
    let mut out: Vec<Stage> = Vec::new();
    for (_, keyword, rest) in instructions(text).unwrap_or_default() {
        match keyword.as_str() {
            "ARG" if out.is_empty() => {
                if let Some((k, v)) = rest.split_once('=') {
                    globals.push((k.trim().to_string(), v.trim().trim_matches('"').to_string()));
                }
            }
            "FROM" => {
                let words: Vec<&str> = rest.split_whitespace().filter(|w| !w.starts_with("--")).collect();
                let mut image = words.first().copied().unwrap_or_default().to_string();
                for (k, v) in &globals {
                    image = image.replace(&format!("${{{k}}}"), v).replace(&format!("${k}"), v);
                }
                let name = match words.as_slice() {
                    [_, as_, name] if as_.eq_ignore_ascii_case("as") => Some(name.to_lowercase()),
                    _ => None,
                };
                let earlier = out.iter().position(|s| s.name.as_deref() == Some(image.to_lowercase().as_str()));
                let base = match earlier {
                    Some(i) => Base::Stage(i),
                    None if image.eq_ignore_ascii_case("scratch") => Base::Scratch,
                    None if image.contains('$') => Base::Unresolved(image),
                    None => Base::Image(image),
                };
                out.push(Stage { name, base });
            }
            _ => {}
        }
    }
    out
}

/// `text` with Go's caches mounted into the shell-form `RUN` steps of Go stages. `bases[i]` is
/// what was read of stage `i`'s base image (None: not read, or not an image). The build cache is
/// the platform's own: cross-compiled packages differ.
pub fn with_go_caches(text: &str, platform: &str, bases: &[Option<BaseImage>]) -> Transformed {
    let mut notes = Vec::new();
    let Some(instructions) = instructions(text) else {
        notes.push("the Dockerfile uses heredocs: passed through as it is".into());
        return Transformed { text: text.to_string(), notes, mounted: 0 };
    };
    let stages = stages(text);
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    let (mut stage, mut user, mut go): (Option<usize>, String, Option<String>) = (None, String::new(), None);
    let mut inherited: Vec<(Option<String>, String)> = Vec::new();
    let mut mounted = 0;
    let label = |s: usize| stages[s].name.clone().unwrap_or_else(|| format!("#{s}"));
    for (line, keyword, rest) in instructions {
        match keyword.as_str() {
            "FROM" => {
                if stage.is_some() {
                    inherited.push((go.clone(), user.clone()));
                }
                let s = stage.map_or(0, |s| s + 1);
                stage = Some(s);
                (go, user) = match (&stages[s].base, bases.get(s).cloned().flatten()) {
                    (Base::Stage(i), _) => inherited.get(*i).cloned().unwrap_or_default(),
                    (_, Some(b)) => (b.go, b.user),
                    _ => (None, String::new()),
                };
                let why = match (&stages[s].base, &go) {
                    (_, Some(why)) => format!("a Go toolchain image ({why})"),
                    (Base::Scratch, _) => "scratch: not Go".into(),
                    (Base::Unresolved(r), _) => format!("base {r} holds a variable: not read, left as it is"),
                    (Base::Image(i), None) if bases.get(s).cloned().flatten().is_some() => {
                        format!("{i}: not a Go toolchain image")
                    }
                    (Base::Image(i), None) => format!("{i}: its config could not be read, left as it is"),
                    (Base::Stage(i), None) => format!("from stage {}: not Go", label(*i)),
                };
                notes.push(format!("stage {}: {why}", label(s)));
            }
            "USER" => user = rest.clone(),
            "RUN" if go.is_some() => {
                let shown = format!("line {}: RUN {}", line + 1, short(&rest));
                let command = rest.split_whitespace().find(|w| !w.starts_with("--")).unwrap_or_default();
                if rest.contains("--mount=type=cache") {
                    notes.push(format!("{shown}: mounts caches of its own, left as it is"));
                } else if command.starts_with('[') {
                    notes.push(format!("{shown}: exec form (no shell to set GOCACHE in), left as it is"));
                } else if !matches!(user.as_str(), "" | "root" | "0" | "0:0" | "root:root") {
                    notes.push(format!(
                        "{shown}: runs as user {user}, and the cache mounts would be root's: left as it is"
                    ));
                } else {
                    lines[line] = mount(&lines[line], platform);
                    mounted += 1;
                    notes.push(format!(
                        "{shown}: Go's caches mounted (GOMODCACHE={MOD_CACHE}, GOCACHE={BUILD_CACHE} for {platform})"
                    ));
                }
            }
            _ => {}
        }
    }
    let mut text = lines.join("\n");
    text.push('\n');
    Transformed { text, notes, mounted }
}

/// The `RUN` line with the two cache mounts after `RUN` and the cache paths set for its shell.
fn mount(line: &str, platform: &str) -> String {
    let indent = &line[..line.len() - line.trim_start().len()];
    let after_run = line.trim_start()[3..].trim_start();
    let flags_end =
        after_run.split_inclusive(char::is_whitespace).take_while(|w| w.starts_with("--")).map(str::len).sum::<usize>();
    let (flags, command) = after_run.split_at(flags_end);
    let id = platform.replace('/', "-");
    format!(
        "{indent}RUN --mount=type=cache,id=kmcp-go-mod,target={MOD_CACHE},sharing=shared --mount=type=cache,id=kmcp-go-build-{id},target={BUILD_CACHE},sharing=locked {flags}export GOMODCACHE={MOD_CACHE} GOCACHE={BUILD_CACHE}; {command}"
    )
}

fn short(text: &str) -> String {
    let first: String = text.chars().take(60).collect();
    if first.len() < text.len() {
        format!("{first}...")
    } else {
        first
    }
}

/// Whether an image's `Env` is a Go toolchain's: the reason, else None.
pub fn go_toolchain(env: &[String]) -> Option<String> {
    let set: Vec<&str> = env
        .iter()
        .filter(|e| e.starts_with("GOLANG_VERSION=") || e.starts_with("GOPATH="))
        .map(String::as_str)
        .collect();
    if !set.is_empty() {
        return Some(format!("its config sets {}", set.join(", ")));
    }
    let path = env.iter().find_map(|e| e.strip_prefix("PATH="))?;
    path.split(':').find(|d| d.ends_with("/go/bin")).map(|d| format!("its PATH holds {d}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const UPSTREAM: &str = "FROM --platform=$BUILDPLATFORM golang:latest AS builder\n\nARG TARGETOS=linux\nARG TARGETARCH=amd64\n\nWORKDIR /app\nCOPY ./ ./\n\nRUN make build-multiarch TARGETOS=${TARGETOS} TARGETARCH=${TARGETARCH}\n\nFROM registry.access.redhat.com/ubi9/ubi-minimal:latest\nWORKDIR /app\nCOPY --from=builder /app/kubernetes-mcp-server /app/kubernetes-mcp-server\nUSER 65532:65532\nRUN echo final\nENTRYPOINT [\"/app/kubernetes-mcp-server\"]\n";

    fn go() -> Option<BaseImage> {
        Some(BaseImage { go: Some("its config sets GOPATH=/go".into()), user: String::new() })
    }

    #[test]
    fn upstreams_builder_gets_the_caches_and_its_final_stage_does_not() {
        let st = stages(UPSTREAM);
        assert_eq!(st[0], Stage { name: Some("builder".into()), base: Base::Image("golang:latest".into()) });
        assert_eq!(st[1].base, Base::Image("registry.access.redhat.com/ubi9/ubi-minimal:latest".into()));
        let plain = Some(BaseImage { go: None, user: String::new() });
        let t = with_go_caches(UPSTREAM, "linux/arm64", &[go(), plain]);
        assert_eq!(t.mounted, 1);
        let run = t.text.lines().nth(8).unwrap();
        assert_eq!(run, "RUN --mount=type=cache,id=kmcp-go-mod,target=/kmcp-cache/go-mod,sharing=shared --mount=type=cache,id=kmcp-go-build-linux-arm64,target=/kmcp-cache/go-build,sharing=locked export GOMODCACHE=/kmcp-cache/go-mod GOCACHE=/kmcp-cache/go-build; make build-multiarch TARGETOS=${TARGETOS} TARGETARCH=${TARGETARCH}");
        let others: Vec<(&str, &str)> = UPSTREAM.lines().zip(t.text.lines()).filter(|(a, b)| a != b).collect();
        assert_eq!(others.len(), 1, "only the builder's RUN changes");
        assert!(
            t.notes[0].starts_with("stage builder: a Go toolchain image (its config sets GOPATH=/go)"),
            "{:?}",
            t.notes
        );
        assert!(t.notes.iter().any(|n| n.contains("ubi-minimal:latest: not a Go toolchain image")), "{:?}", t.notes);
    }

    #[test]
    fn what_passes_through_and_why() {
        let text = "ARG GO=golang:1.26\nFROM ${GO} AS b\nRUN --mount=type=cache,target=/root/.cache go build ./...\nRUN [\"go\", \"build\"]\nUSER 1001\nRUN go build \\\n  ./cmd\nFROM b AS c\nRUN go vet\nFROM $UNSET\nRUN go build\n";
        let st = stages(text);
        assert_eq!(st[0].base, Base::Image("golang:1.26".into()));
        assert_eq!(st[1].base, Base::Stage(0));
        assert_eq!(st[2].base, Base::Unresolved("$UNSET".into()));
        let t = with_go_caches(text, "linux/amd64", &[go(), None, None]);
        assert_eq!(t.mounted, 0, "{}", t.text);
        assert_eq!(t.text, text);
        let notes = t.notes.join("\n");
        for said in ["mounts caches of its own", "exec form", "runs as user 1001", "holds a variable"] {
            assert!(notes.contains(said), "{said}: {notes}");
        }
        let heredoc = "FROM golang\nRUN <<EOF\ngo build\nEOF\n";
        assert!(with_go_caches(heredoc, "linux/amd64", &[go()]).notes[0].contains("heredocs"));
    }

    #[test]
    fn go_toolchains_are_known_by_their_config() {
        let official =
            ["PATH=/usr/local/go/bin:/usr/bin".to_string(), "GOLANG_VERSION=1.26.8".into(), "GOPATH=/go".into()];
        assert_eq!(go_toolchain(&official).unwrap(), "its config sets GOLANG_VERSION=1.26.8, GOPATH=/go");
        assert_eq!(go_toolchain(&["PATH=/opt/go/bin:/bin".into()]).unwrap(), "its PATH holds /opt/go/bin");
        assert_eq!(go_toolchain(&["PATH=/usr/bin".into()]), None);
    }
}
