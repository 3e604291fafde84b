//! Reading an answer as a phi-1 CodeExercise: a Python function with a docstring (the
//! exercise), its implementation (the solution) and `assert` tests.
//!
//! The code is the answer's fenced code blocks (```` ```python ````, ```` ```py ````, or
//! bare fences), joined, or the whole answer when it has none. It is parsed with Ruff's
//! Python parser (`ruff_python_parser`, Python's real grammar, maintained with Ruff). The
//! exercise's function is the first top-level function with a docstring; its signature
//! is the text of its `def` line(s), its docstring the string's value. The solution is every
//! top-level statement that is not a test and not a bare expression (imports, helpers,
//! classes, constants and the function), with the function's last definition that has a
//! body beyond the docstring (a model often repeats a stub, then implements it). The
//! tests are the top-level `assert` statements, and those under
//! `if __name__ == "__main__":`. Each check that fails names a reason.

use ruff_python_ast::{Expr, Stmt};
use ruff_text_size::Ranged;

/// An exercise read from an answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exercise {
    /// The function's name.
    pub function: String,
    /// `def name(params) -> type:` as written.
    pub signature: String,
    /// The docstring's text.
    pub docstring: String,
    /// The code that defines the function (imports, helpers, the function).
    pub solution: String,
    /// The `assert` statements, one per line.
    pub tests: String,
}

/// Why an answer is not a valid exercise.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid {
    /// `no_code`, `syntax_error`, `no_function`, `no_docstring`, `no_implementation`,
    /// `no_tests`, `tests_do_not_call`.
    pub reason: &'static str,
    pub detail: String,
}

fn invalid(reason: &'static str, detail: impl Into<String>) -> Invalid {
    Invalid {
        reason,
        detail: detail.into(),
    }
}

/// The code of an answer: its fenced blocks joined, or the whole answer.
pub fn code_of(answer: &str) -> String {
    let mut blocks = Vec::new();
    let mut lines = answer.lines();
    let mut any_fence = false;
    while let Some(line) = lines.next() {
        let t = line.trim_start();
        if let Some(info) = t.strip_prefix("```") {
            any_fence = true;
            let lang = info.trim().to_ascii_lowercase();
            let mut block = Vec::new();
            for l in lines.by_ref() {
                if l.trim_start().starts_with("```") {
                    break;
                }
                block.push(l);
            }
            if lang.is_empty() || lang == "python" || lang == "py" || lang == "python3" {
                blocks.push(block.join("\n"));
            }
        }
    }
    if blocks.iter().any(|b| !b.trim().is_empty()) {
        return blocks.join("\n\n");
    }
    if !any_fence {
        return answer.to_string();
    }
    // Fences around nothing, or a stray closing fence after unfenced code: the answer
    // without its fence lines.
    answer
        .lines()
        .filter(|l| !l.trim_start().starts_with("```"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// 1-based line and column of a byte offset.
fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let col = before
        .rfind('\n')
        .map_or(before.len(), |i| before.len() - i - 1)
        + 1;
    (line, col)
}

fn docstring_of(body: &[Stmt]) -> Option<&str> {
    match body.first() {
        Some(Stmt::Expr(e)) => match e.value.as_ref() {
            Expr::StringLiteral(s) => Some(s.value.to_str()),
            _ => None,
        },
        _ => None,
    }
}

/// A body that is only a docstring and `pass` or `...`.
fn is_stub(body: &[Stmt]) -> bool {
    let rest = if docstring_of(body).is_some() {
        &body[1..]
    } else {
        body
    };
    rest.iter().all(|s| match s {
        Stmt::Pass(_) => true,
        Stmt::Expr(e) => matches!(e.value.as_ref(), Expr::EllipsisLiteral(_)),
        _ => false,
    })
}

fn is_main_guard(test: &Expr, code: &str) -> bool {
    let t: String = code[test.range()]
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    t == "__name__==\"__main__\"" || t == "__name__=='__main__'"
}

/// Whether `name` is called in `code` (as `name(`, not as part of a longer name).
fn calls(code: &str, name: &str) -> bool {
    let b = code.as_bytes();
    let mut from = 0;
    while let Some(i) = code[from..].find(name) {
        let at = from + i;
        let end = at + name.len();
        let before_ok = at == 0 || !(b[at - 1].is_ascii_alphanumeric() || b[at - 1] == b'_');
        let after = code[end..].trim_start();
        if before_ok && after.starts_with('(') {
            return true;
        }
        from = end;
    }
    false
}

/// Read and check an answer as an exercise.
pub fn parse_exercise(answer: &str) -> Result<Exercise, Invalid> {
    let code = code_of(answer);
    if code.trim().is_empty() {
        return Err(invalid("no_code", "the answer holds no code"));
    }
    let parsed = ruff_python_parser::parse_module(&code).map_err(|e| {
        let (l, c) = line_col(&code, usize::from(e.location.start()));
        invalid("syntax_error", format!("line {l}, column {c}: {}", e.error))
    })?;
    let module = parsed.into_syntax();
    let body = &module.body;
    let text = |r: ruff_text_size::TextRange| code[r].to_string();

    // The exercise: the first top-level function with a docstring.
    let functions: Vec<&ruff_python_ast::StmtFunctionDef> = body
        .iter()
        .filter_map(|s| match s {
            Stmt::FunctionDef(f) => Some(f),
            _ => None,
        })
        .collect();
    if functions.is_empty() {
        return Err(invalid(
            "no_function",
            "the code defines no top-level function",
        ));
    }
    let Some(main) = functions.iter().find(|f| docstring_of(&f.body).is_some()) else {
        return Err(invalid(
            "no_docstring",
            format!("function `{}` has no docstring", functions[0].name.as_str()),
        ));
    };
    let name = main.name.as_str().to_string();
    let docstring = docstring_of(&main.body)
        .unwrap_or_default()
        .trim()
        .to_string();
    let first_stmt = main.body.first().map_or(main.end(), |s| s.start());
    let signature = code[main.range().start().into()..usize::from(first_stmt)]
        .trim_end()
        .to_string();
    let signature = signature
        .lines()
        .skip_while(|l| l.trim_start().starts_with('@'))
        .collect::<Vec<_>>()
        .join("\n");
    // Its implementation: the last definition of that name that is more than a stub.
    let Some(implementation) = functions
        .iter()
        .rev()
        .find(|f| f.name.as_str() == name && !is_stub(&f.body))
    else {
        return Err(invalid(
            "no_implementation",
            format!("function `{name}` has a docstring but no body"),
        ));
    };

    let mut solution = Vec::new();
    let mut tests = Vec::new();
    for s in body.iter() {
        match s {
            Stmt::Assert(a) => tests.push(text(a.range())),
            Stmt::If(i) if is_main_guard(&i.test, &code) => {
                for inner in &i.body {
                    if let Stmt::Assert(a) = inner {
                        tests.push(text(a.range()));
                    }
                }
            }
            // Bare expressions (calls to print, a module docstring) are not the solution.
            Stmt::Expr(_) => {}
            Stmt::FunctionDef(f) if f.name.as_str() == name => {
                if std::ptr::eq(f, *implementation) {
                    solution.push(text(f.range()));
                }
            }
            other => solution.push(text(other.range())),
        }
    }
    if tests.is_empty() {
        return Err(invalid(
            "no_tests",
            format!("no `assert` statement tests `{name}`"),
        ));
    }
    let tests = tests.join("\n");
    if !calls(&tests, &name) {
        return Err(invalid(
            "tests_do_not_call",
            format!("the asserts never call `{name}`"),
        ));
    }
    Ok(Exercise {
        function: name,
        signature,
        docstring,
        solution: solution.join("\n\n"),
        tests,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"Here is an exercise.

```python
from typing import List

def running_sum(xs: List[int]) -> List[int]:
    """Return the running sums of `xs`.

    >>> running_sum([1, 2, 3])
    [1, 3, 6]
    """
    out, total = [], 0
    for x in xs:
        total += x
        out.append(total)
    return out

assert running_sum([]) == []
assert running_sum([1, 2, 3]) == [1, 3, 6]
assert running_sum([-1, 1]) == [-1, 0]
print(running_sum([5]))
```
"#;

    #[test]
    fn a_well_formed_exercise_is_split_into_its_parts() {
        let e = parse_exercise(GOOD).unwrap();
        assert_eq!(e.function, "running_sum");
        assert_eq!(e.signature, "def running_sum(xs: List[int]) -> List[int]:");
        assert!(e.docstring.starts_with("Return the running sums of `xs`."));
        assert!(
            e.solution
                .starts_with("from typing import List\n\ndef running_sum(")
        );
        assert!(e.solution.ends_with("    return out"));
        assert!(!e.solution.contains("print"));
        assert_eq!(e.tests.lines().count(), 3);
        assert!(e.tests.starts_with("assert running_sum([]) == []"));
    }

    #[test]
    fn a_stub_then_its_implementation_and_tests_under_main() {
        let answer = "```python\ndef f(x):\n    \"\"\"Double x.\"\"\"\n    ...\n```\n\n```python\ndef f(x):\n    \"\"\"Double x.\"\"\"\n    return 2 * x\n\nif __name__ == \"__main__\":\n    assert f(2) == 4\n    assert f(0) == 0\n```";
        let e = parse_exercise(answer).unwrap();
        assert_eq!(e.signature, "def f(x):");
        assert_eq!(e.docstring, "Double x.");
        assert_eq!(
            e.solution,
            "def f(x):\n    \"\"\"Double x.\"\"\"\n    return 2 * x"
        );
        assert_eq!(e.tests, "assert f(2) == 4\nassert f(0) == 0");
    }

    #[test]
    fn every_invalid_kind_is_named() {
        let reason = |a: &str| parse_exercise(a).unwrap_err().reason;
        assert_eq!(reason("Sorry, I cannot do that."), "syntax_error");
        assert_eq!(reason("```\n```"), "no_code");
        // Code with only a stray closing fence is still read.
        assert_eq!(
            parse_exercise("def h(x):\n    \"\"\"Id.\"\"\"\n    return x\nassert h(1) == 1\n```")
                .unwrap()
                .function,
            "h"
        );
        assert_eq!(
            reason("```python\nx = 1\nassert x == 1\n```"),
            "no_function"
        );
        assert_eq!(
            reason("```python\ndef f():\n    return 1\nassert f() == 1\n```"),
            "no_docstring"
        );
        assert_eq!(
            reason("```python\ndef f():\n    \"\"\"One.\"\"\"\n    pass\nassert f() == 1\n```"),
            "no_implementation"
        );
        assert_eq!(
            reason("```python\ndef f():\n    \"\"\"One.\"\"\"\n    return 1\n```"),
            "no_tests"
        );
        assert_eq!(
            reason(
                "```python\ndef f():\n    \"\"\"One.\"\"\"\n    return 1\nassert ff() == 1\nassert 1 == 1\n```"
            ),
            "tests_do_not_call"
        );
        let e = parse_exercise("```python\ndef f(:\n    pass\n```").unwrap_err();
        assert_eq!(e.reason, "syntax_error");
        assert!(e.detail.starts_with("line 1, column "), "{}", e.detail);
    }

    #[test]
    fn unfenced_code_and_other_languages() {
        let e = parse_exercise(
            "def g(a, b):\n    '''Add.'''\n    return a + b\n\nassert g(1, 2) == 3\n",
        )
        .unwrap();
        assert_eq!(e.function, "g");
        // A shell block beside the Python one is ignored.
        let e = parse_exercise("```bash\npip install nothing\n```\n```py\ndef g(a):\n    '''Id.'''\n    return a\nassert g(1) == 1\n```").unwrap();
        assert_eq!(e.tests, "assert g(1) == 1");
    }

    #[test]
    fn calls_are_whole_names() {
        assert!(calls("assert f(1) == 2", "f"));
        assert!(calls("assert g (1)", "g"));
        assert!(!calls("assert ff(1)", "f"));
        assert!(!calls("assert f == 1", "f"));
    }
}
