//! Reads the package's PowerShell scripts with the tree-sitter PowerShell
//! grammar: syntax errors, and the commands a script runs with their
//! arguments. (PowerShell itself cannot run here.)

use tree_sitter::{Node, Parser, Tree};

/// One argument of a command, as the parser classified it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Arg {
    /// `-Name` (a cmdlet parameter, or a program's dash option).
    Parameter(String),
    /// A bare word: `/add-driver`, `p`, `rawnic.sys`, `{current}`.
    Word(String),
    /// A number.
    Number(String),
    /// Anything else: a quoted string, a variable, an expression. The text
    /// is kept for messages.
    Operand(String),
}

/// A command the script runs.
#[derive(Debug, Clone)]
pub struct Command {
    pub name: String,
    /// 1-based line.
    pub line: usize,
    pub args: Vec<Arg>,
}

/// Parses `source`; an error names the first line the grammar could not
/// read.
pub fn parse(source: &str) -> Result<Tree, String> {
    let mut parser = Parser::new();
    parser.set_language(&tree_sitter_powershell::LANGUAGE.into()).map_err(|e| format!("loading the grammar: {e}"))?;
    let tree = parser.parse(source, None).ok_or("the parser gave up")?;
    if tree.root_node().has_error() {
        let mut first = None;
        walk(tree.root_node(), &mut |n| {
            if first.is_none() && (n.is_error() || n.is_missing()) {
                first = Some(n.start_position().row + 1);
            }
        });
        return Err(format!("syntax error at line {}", first.unwrap_or(0)));
    }
    Ok(tree)
}

/// Calls `f` on `node` and every node below it, in document order.
pub fn walk<'t>(node: Node<'t>, f: &mut impl FnMut(Node<'t>)) {
    f(node);
    let mut cursor = node.walk();
    for child in node.children(&mut cursor) {
        walk(child, f);
    }
}

/// The kinds of every named node in `tree`.
pub fn kinds(tree: &Tree) -> Vec<&'static str> {
    let mut out = Vec::new();
    walk(tree.root_node(), &mut |n| {
        if n.is_named() {
            out.push(n.kind());
        }
    });
    out
}

fn text<'s>(node: Node<'_>, source: &'s str) -> &'s str {
    &source[node.byte_range()]
}

/// Every command in `source`, in order (commands inside `$( )`, `@( )` and
/// script blocks included).
pub fn commands(source: &str) -> Result<Vec<Command>, String> {
    let tree = parse(source)?;
    let mut out = Vec::new();
    walk(tree.root_node(), &mut |n| {
        if n.kind() != "command" {
            return;
        }
        let Some(name) = n.child_by_field_name("command_name") else { return };
        let mut args = Vec::new();
        if let Some(elements) = n.child_by_field_name("command_elements") {
            let mut cursor = elements.walk();
            for e in elements.named_children(&mut cursor) {
                let t = text(e, source).to_string();
                let number = t.parse::<f64>().is_ok()
                    || t.strip_prefix("0x").is_some_and(|h| u64::from_str_radix(h, 16).is_ok());
                args.push(match e.kind() {
                    "command_argument_sep" => continue,
                    "command_parameter" => Arg::Parameter(t),
                    _ if number => Arg::Number(t),
                    "generic_token" => Arg::Word(t),
                    _ => Arg::Operand(t),
                });
            }
        }
        out.push(Command { name: text(name, source).to_string(), line: n.start_position().row + 1, args });
    });
    Ok(out)
}

/// The names of the functions `source` defines.
pub fn functions(source: &str) -> Result<Vec<String>, String> {
    let tree = parse(source)?;
    let mut out = Vec::new();
    walk(tree.root_node(), &mut |n| {
        if n.kind() == "function_statement" {
            let mut cursor = n.walk();
            let name = n.named_children(&mut cursor).find(|c| c.kind() == "function_name");
            if let Some(name) = name {
                out.push(text(name, source).to_string());
            }
        }
    });
    Ok(out)
}

/// The contents of every quoted string in `source` (without the quotes).
pub fn strings(source: &str) -> Result<Vec<String>, String> {
    let tree = parse(source)?;
    let mut out = Vec::new();
    walk(tree.root_node(), &mut |n| {
        if matches!(n.kind(), "expandable_string_literal" | "verbatim_string_characters") {
            let t = text(n, source);
            out.push(t.trim_matches(|c| c == '"' || c == '\'').to_string());
        }
    });
    Ok(out)
}
