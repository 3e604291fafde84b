//! The built-in template sets: phi-1 / Cosmopedia-style textbook sections and phi-1's
//! CodeExercises. Diversity comes from the design (topic × audience × style, topic ×
//! difficulty), as the phi-1 paper and Cosmopedia found it must.

use std::collections::BTreeMap;

use crate::config::{Builtin, ParseKind};

/// A template set: messages and a default design.
pub struct TemplateSet {
    pub system: &'static str,
    pub prompt: &'static str,
    pub design: &'static [(&'static str, &'static [&'static str])],
    pub parse: ParseKind,
}

/// Topics of programming textbooks and exercises: the basic coding concepts phi-1's
/// data was selected and generated for.
const CODING_TOPICS: &[&str] = &[
    "variables, values and types in Python",
    "arithmetic and operator precedence",
    "strings and string methods",
    "string formatting",
    "conditionals and boolean logic",
    "for loops and range",
    "while loops and loop invariants",
    "lists and list methods",
    "list comprehensions",
    "tuples and unpacking",
    "dictionaries",
    "sets and set operations",
    "functions, parameters and return values",
    "default and keyword arguments",
    "recursion",
    "scope and closures",
    "higher-order functions, map and filter",
    "sorting with keys",
    "binary search",
    "linear search and counting",
    "stacks and queues",
    "linked lists",
    "binary trees and tree traversal",
    "hash tables",
    "graphs, breadth-first and depth-first search",
    "dynamic programming",
    "greedy algorithms",
    "time complexity and big-O notation",
    "classes and objects",
    "inheritance and composition",
    "exceptions and error handling",
    "iterators and generators",
    "working with dates and times",
    "regular expressions",
    "matrix operations with nested lists",
    "prime numbers and divisibility",
    "bit manipulation",
    "string parsing and tokenizing",
    "simulation with random numbers",
    "testing code with assertions",
];

const TEXTBOOK: TemplateSet = TemplateSet {
    system: "You are an expert teacher and textbook author. You write clear, correct, \
self-contained textbook sections that teach by explanation and example.",
    prompt: r#"Write a section of a textbook on "{{ topic }}" for {{ audience }}, {{ style }}.

Start with the section's title as a Markdown heading. Explain the key ideas step by step with precise definitions, work through at least one complete example, include short Python code examples in ```python blocks where they help, and end with a brief summary and two review questions. Write only the section itself."#,
    design: &[
        ("topic", CODING_TOPICS),
        (
            "audience",
            &[
                "a high-school student who is new to programming",
                "a first-year computer science undergraduate",
                "a self-taught adult learner",
                "a professional developer who is learning Python",
            ],
        ),
        (
            "style",
            &[
                "in a clear, friendly and encouraging tone",
                "in a precise, rigorous academic tone",
                "through a worked, real-world scenario",
            ],
        ),
    ],
    parse: ParseKind::Text,
};

const EXERCISES: TemplateSet = TemplateSet {
    system: "You are an expert Python programmer and teacher. You write programming exercises \
with precise docstrings, correct solutions and tests.",
    prompt: r#"Write one Python programming exercise about {{ topic }}, of {{ difficulty }} difficulty.

Answer with a single ```python code block and nothing else. The block must contain:
1. one function with type hints and a docstring that states the task precisely and gives an example;
2. the function's complete, correct implementation;
3. at least three `assert` statements after the function that call it and check its results.

Use only the Python standard library. The code must not read input, print, use files or use the network."#,
    design: &[
        ("topic", CODING_TOPICS),
        ("difficulty", &["easy", "medium", "hard"]),
    ],
    parse: ParseKind::Exercise,
};

impl Builtin {
    pub fn set(self) -> &'static TemplateSet {
        match self {
            Builtin::Textbook => &TEXTBOOK,
            Builtin::Exercises => &EXERCISES,
        }
    }
}

impl TemplateSet {
    /// The set's design with `user`'s variables laid over it.
    pub fn design_with(
        &self,
        user: &BTreeMap<String, Vec<String>>,
    ) -> BTreeMap<String, Vec<String>> {
        let mut d: BTreeMap<String, Vec<String>> = self
            .design
            .iter()
            .map(|(k, v)| (k.to_string(), v.iter().map(|s| s.to_string()).collect()))
            .collect();
        for (k, v) in user {
            d.insert(k.clone(), v.clone());
        }
        d
    }
}
