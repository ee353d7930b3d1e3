//! Graphviz output: a function's dataflow graph (one node per input, instruction and output).

use crate::Function;
use std::fmt::Write;

fn esc(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}

/// The dataflow graph of `f` in Graphviz `dot` syntax. Nested bodies are drawn as clusters.
pub fn to_dot(f: &Function) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "digraph \"{}\" {{", esc(&f.name));
    let _ = writeln!(
        out,
        "  rankdir=TB; node [fontname=\"monospace\", fontsize=10];"
    );
    let mut counter = 0usize;
    write_body(f, "", &mut out, &mut counter);
    out.push_str("}\n");
    out
}

/// Writes the nodes and edges of `f` with node names prefixed by `prefix`.
fn write_body(f: &Function, prefix: &str, out: &mut String, counter: &mut usize) {
    // Node of each value: inputs are their own nodes; results point at their instruction.
    let mut node_of: Vec<String> = vec![String::new(); f.types.len()];
    for (i, p) in f.params.iter().enumerate() {
        let n = format!("{prefix}in{i}");
        let _ = writeln!(
            out,
            "  {n} [shape=box, style=filled, fillcolor=lightblue, label=\"%{}\\n{}\"];",
            esc(&p.name),
            p.ty
        );
        node_of[i] = n;
    }
    for (k, inst) in f.insts.iter().enumerate() {
        let n = format!("{prefix}op{k}");
        let tys: Vec<String> = inst.results.iter().map(|r| f.ty(*r).to_string()).collect();
        let _ = writeln!(
            out,
            "  {n} [label=\"{}\\n{}\"];",
            inst.op.name(),
            esc(&tys.join(", "))
        );
        for a in &inst.args {
            let _ = writeln!(out, "  {} -> {n};", node_of[a.index()]);
        }
        for r in &inst.results {
            node_of[r.index()] = n.clone();
        }
        for body in inst.op.bodies() {
            *counter += 1;
            let c = *counter;
            let _ = writeln!(
                out,
                "  subgraph cluster_{c} {{ label=\"{} @{}\"; style=dashed;",
                inst.op.name(),
                esc(&body.name)
            );
            write_body(body, &format!("b{c}_"), out, counter);
            out.push_str("  }\n");
        }
    }
    for (i, o) in f.outputs.iter().enumerate() {
        let n = format!("{prefix}out{i}");
        let _ = writeln!(
            out,
            "  {n} [shape=box, style=filled, fillcolor=lightyellow, label=\"{}\"];",
            esc(&o.name)
        );
        let _ = writeln!(out, "  {} -> {n};", node_of[o.value.index()]);
    }
}
