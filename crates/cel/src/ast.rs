//! Walking a parsed expression.

use kube_cel::cel::common::ast::{EntryExpr, Expr, IdedExpr};

/// Calls `f` on each direct child of a node.
pub(crate) fn for_each_child(expr: &IdedExpr, mut f: impl FnMut(&IdedExpr)) {
    match &expr.expr {
        Expr::Call(call) => {
            if let Some(target) = &call.target {
                f(target);
            }
            call.args.iter().for_each(f);
        }
        Expr::Select(select) => f(&select.operand),
        Expr::List(list) => list.elements.iter().for_each(f),
        Expr::Map(map) => {
            for entry in &map.entries {
                if let EntryExpr::MapEntry(e) = &entry.expr {
                    f(&e.key);
                    f(&e.value);
                }
            }
        }
        Expr::Comprehension(c) => {
            f(&c.iter_range);
            f(&c.accu_init);
            f(&c.loop_cond);
            f(&c.loop_step);
            f(&c.result);
        }
        Expr::Struct(_) | Expr::Ident(_) | Expr::Literal(_) | Expr::Unspecified => {}
    }
}

/// Calls `f` on every node, parents before children.
pub(crate) fn visit(expr: &IdedExpr, f: &mut impl FnMut(&IdedExpr)) {
    f(expr);
    for_each_child(expr, |child| visit(child, f));
}

/// Calls `f` on each direct child of a node, mutably.
pub(crate) fn for_each_child_mut(expr: &mut IdedExpr, f: &mut impl FnMut(&mut IdedExpr)) {
    match &mut expr.expr {
        Expr::Call(call) => {
            if let Some(target) = &mut call.target {
                f(target);
            }
            call.args.iter_mut().for_each(f);
        }
        Expr::Select(select) => f(&mut select.operand),
        Expr::List(list) => list.elements.iter_mut().for_each(f),
        Expr::Map(map) => {
            for entry in &mut map.entries {
                if let EntryExpr::MapEntry(e) = &mut entry.expr {
                    f(&mut e.key);
                    f(&mut e.value);
                }
            }
        }
        Expr::Comprehension(c) => {
            f(&mut c.iter_range);
            f(&mut c.accu_init);
            f(&mut c.loop_cond);
            f(&mut c.loop_step);
            f(&mut c.result);
        }
        Expr::Struct(_) | Expr::Ident(_) | Expr::Literal(_) | Expr::Unspecified => {}
    }
}

/// Rewrites the message constructions a MutatingAdmissionPolicy (and
/// Kyverno's MutatingPolicy) writes, `Object{spec: Object.spec{…}}` and
/// `JSONPatch{op: "add", …}`, as the maps they describe: an apply
/// configuration and a JSON patch operation are plain JSON in the end, and
/// the interpreter evaluates maps, not messages. Optional fields
/// (`?field: value`) stay optional entries. Other message types are left
/// for [`crate::limits::check_supported`] to refuse.
pub(crate) fn apply_configurations_as_maps(expr: &mut IdedExpr) {
    use kube_cel::cel::common::ast::{LiteralValue, MapEntryExpr, MapExpr};
    if let Expr::Struct(message) = &mut expr.expr
        && is_apply_configuration(&message.type_name)
    {
        let entries = std::mem::take(&mut message.entries)
            .into_iter()
            .map(|mut entry| {
                if let EntryExpr::StructField(field) = entry.expr {
                    let key = IdedExpr {
                        id: entry.id,
                        expr: Expr::Literal(LiteralValue::String(field.field.as_str().into())),
                    };
                    entry.expr = EntryExpr::MapEntry(MapEntryExpr {
                        key,
                        value: field.value,
                        optional: field.optional,
                    });
                }
                entry
            })
            .collect();
        expr.expr = Expr::Map(MapExpr { entries });
    }
    for_each_child_mut(expr, &mut apply_configurations_as_maps);
}

/// `Object`, `Object.spec.template` and so on, or `JSONPatch`.
fn is_apply_configuration(type_name: &str) -> bool {
    type_name == "Object" || type_name.starts_with("Object.") || type_name == "JSONPatch"
}
