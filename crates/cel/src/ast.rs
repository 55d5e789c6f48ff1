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
