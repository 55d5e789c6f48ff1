//! The dependency graph of a ResourceGraphDefinition's resources.
//!
//! An edge `a → b` means `b` refers to `a` (in its template, `includeWhen`
//! or `forEach`), so `a` is applied first. The order is Kahn's algorithm
//! taking, among the resources whose dependencies are all placed, the one
//! declared first: declaration order is kept wherever the dependencies allow.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

/// The resources in dependency order, or the first cycle found (as indexes,
/// the first repeated at the end).
pub fn topological_order(dependencies: &[Vec<usize>]) -> Result<Vec<usize>, Vec<usize>> {
    let n = dependencies.len();
    let mut waiting_on: Vec<usize> = dependencies.iter().map(Vec::len).collect();
    let mut dependents: Vec<Vec<usize>> = vec![Vec::new(); n];
    for (node, deps) in dependencies.iter().enumerate() {
        for &dep in deps {
            dependents[dep].push(node);
        }
    }
    let mut ready: BinaryHeap<Reverse<usize>> = (0..n)
        .filter(|&i| waiting_on[i] == 0)
        .map(Reverse)
        .collect();
    let mut order = Vec::with_capacity(n);
    while let Some(Reverse(node)) = ready.pop() {
        order.push(node);
        for &dependent in &dependents[node] {
            waiting_on[dependent] -= 1;
            if waiting_on[dependent] == 0 {
                ready.push(Reverse(dependent));
            }
        }
    }
    if order.len() == n {
        Ok(order)
    } else {
        Err(find_cycle(dependencies, &order))
    }
}

/// A cycle among the nodes not placed in `order`.
fn find_cycle(dependencies: &[Vec<usize>], order: &[usize]) -> Vec<usize> {
    let placed: Vec<bool> = (0..dependencies.len())
        .map(|i| order.contains(&i))
        .collect();
    let Some(start) = (0..dependencies.len()).find(|&i| !placed[i]) else {
        return Vec::new();
    };
    // Every unplaced node depends on an unplaced node; walk until a repeat.
    let mut path = vec![start];
    let mut node = start;
    loop {
        let Some(&next) = dependencies[node].iter().find(|&&d| !placed[d]) else {
            return path;
        };
        if let Some(at) = path.iter().position(|&p| p == next) {
            let mut cycle: Vec<usize> = path[at..].to_vec();
            cycle.push(next);
            // Print the cycle in the direction of application: a -> b means
            // b depends on a.
            cycle.reverse();
            return cycle;
        }
        path.push(next);
        node = next;
    }
}

/// Groups of resources that can be deleted together, last-applied first:
/// a resource is deleted only after everything that depends on it.
pub fn deletion_layers(dependencies: &[Vec<usize>], order: &[usize]) -> Vec<Vec<usize>> {
    let mut level = vec![0usize; dependencies.len()];
    for &node in order {
        level[node] = dependencies[node]
            .iter()
            .map(|&d| level[d] + 1)
            .max()
            .unwrap_or(0);
    }
    let depth = level.iter().copied().max().map_or(0, |m| m + 1);
    let mut layers = vec![Vec::new(); depth];
    for &node in order {
        layers[level[node]].push(node);
    }
    layers.reverse();
    layers
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn declaration_order_within_a_level() {
        // 0 and 2 have no dependencies; 1 depends on 2; 3 on 0.
        let deps = vec![vec![], vec![2], vec![], vec![0]];
        assert_eq!(topological_order(&deps).unwrap(), vec![0, 2, 1, 3]);
    }

    #[test]
    fn cycles_are_spelled_out() {
        // 0 -> 1 -> 2 -> 0 (each depends on the previous), 3 free.
        let deps = vec![vec![2], vec![0], vec![1], vec![]];
        let cycle = topological_order(&deps).unwrap_err();
        assert_eq!(cycle.len(), 4);
        assert_eq!(cycle.first(), cycle.last());
        for pair in cycle.windows(2) {
            assert!(deps[pair[1]].contains(&pair[0]), "{cycle:?}");
        }
    }

    #[test]
    fn deletion_runs_the_layers_backwards() {
        let deps = vec![vec![], vec![0], vec![0], vec![1, 2]];
        let order = topological_order(&deps).unwrap();
        assert_eq!(
            deletion_layers(&deps, &order),
            vec![vec![3], vec![1, 2], vec![0]]
        );
    }

    proptest::proptest! {
        #[test]
        fn every_dependency_comes_first(edges in proptest::collection::vec((0usize..12, 0usize..12), 0..30)) {
            // Only edges to lower indexes: a DAG.
            let mut deps = vec![Vec::new(); 12];
            for (a, b) in edges {
                if a < b && !deps[b].contains(&a) {
                    deps[b].push(a);
                }
            }
            let order = topological_order(&deps).unwrap();
            let position = |n: usize| order.iter().position(|&o| o == n).unwrap();
            for (node, ds) in deps.iter().enumerate() {
                for &d in ds {
                    proptest::prop_assert!(position(d) < position(node));
                }
            }
        }
    }
}
