//! A small reader of the Prometheus text format, enough to check what `render_prometheus`
//! writes: `# TYPE` lines and `name{label="value",...} value` samples, escapes undone.
//! Anything else it does not understand fails the test.

pub struct Exposition {
    /// `(family, kind)` in the order the `# TYPE` lines appear.
    pub types: Vec<(String, String)>,
    pub samples: Vec<Sample>,
}

pub struct Sample {
    pub name: String,
    pub labels: Vec<(String, String)>,
    pub value: f64,
}

impl Exposition {
    /// Every sample of this name, in output order.
    pub fn named(&self, name: &str) -> Vec<&Sample> {
        self.samples.iter().filter(|s| s.name == name).collect()
    }

    /// The one sample of this name.
    pub fn only(&self, name: &str) -> &Sample {
        let found = self.named(name);
        assert_eq!(found.len(), 1, "samples named {name}");
        found[0]
    }
}

impl Sample {
    pub fn label(&self, name: &str) -> &str {
        let found = self.labels.iter().find(|(k, _)| k == name);
        &found
            .unwrap_or_else(|| panic!("{} has no label {name}", self.name))
            .1
    }

    pub fn labels_ref(&self) -> Vec<(&str, &str)> {
        self.labels
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect()
    }
}

pub fn parse(text: &str) -> Exposition {
    let mut exposition = Exposition {
        types: Vec::new(),
        samples: Vec::new(),
    };
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').expect("# TYPE name kind");
            exposition.types.push((name.into(), kind.into()));
            continue;
        }
        assert!(!line.is_empty() && !line.starts_with('#'), "line {line:?}");
        let sample = parse_sample(line);
        let family = exposition.types.last().map(|(n, _)| n.as_str());
        let family = family.unwrap_or_else(|| panic!("sample before any # TYPE: {line}"));
        assert!(
            sample.name.starts_with(family),
            "{} outside its family",
            sample.name
        );
        exposition.samples.push(sample);
    }
    exposition
}

fn parse_sample(line: &str) -> Sample {
    let name_end = line.find(['{', ' ']).expect("a name");
    let name = line[..name_end].to_string();
    let mut chars = line[name_end..].chars().peekable();
    let mut labels = Vec::new();
    if chars.peek() == Some(&'{') {
        chars.next();
        loop {
            if chars.peek() == Some(&'}') {
                chars.next();
                break;
            }
            let key: String = chars.by_ref().take_while(|c| *c != '=').collect();
            assert_eq!(chars.next(), Some('"'), "{line}");
            let mut value = String::new();
            loop {
                match chars.next().expect("unterminated value") {
                    '"' => break,
                    '\\' => match chars.next() {
                        Some('\\') => value.push('\\'),
                        Some('"') => value.push('"'),
                        Some('n') => value.push('\n'),
                        other => panic!("bad escape {other:?} in {line}"),
                    },
                    c => value.push(c),
                }
            }
            labels.push((key, value));
            match chars.next() {
                Some(',') => {}
                Some('}') => break,
                other => panic!("expected , or }} but got {other:?} in {line}"),
            }
        }
    }
    assert_eq!(chars.next(), Some(' '), "{line}");
    let value: String = chars.collect();
    let value = value.parse().unwrap_or_else(|_| panic!("value in {line}"));
    Sample {
        name,
        labels,
        value,
    }
}
