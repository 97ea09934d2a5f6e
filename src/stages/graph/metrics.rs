//! Per-subgraph structure metrics of the node table (see docs/formats.md, "Graph files"):
//! unweighted density, max/mean degree ratio, average clustering, diameter, and the three
//! structure scores (distances of the metric vector to an ideal hub-and-spoke, fully connected
//! and linear graph).

/// Metrics of one connected subgraph.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SubgraphMetrics {
    pub density: f64,
    pub max_avg_degree_ratio: f64,
    pub avg_clustering: f64,
    pub diameter: usize,
    pub single_node_score: f64,
    pub hub_spoke_score: f64,
    pub strongly_connected_score: f64,
    pub linear_score: f64,
}

fn euclidean(a: &[f64; 4], b: &[f64; 4]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y) * (x - y))
        .sum::<f64>()
        .sqrt()
}

/// Longest shortest path (breadth-first search from every node); n − 1 if disconnected.
fn diameter(adjacency: &[Vec<usize>]) -> usize {
    let n = adjacency.len();
    let mut longest = 0;
    let mut dist = vec![usize::MAX; n];
    let mut queue = std::collections::VecDeque::new();
    for source in 0..n {
        dist.iter_mut().for_each(|d| *d = usize::MAX);
        dist[source] = 0;
        queue.push_back(source);
        let mut reached = 1;
        while let Some(u) = queue.pop_front() {
            for &v in &adjacency[u] {
                if dist[v] == usize::MAX {
                    dist[v] = dist[u] + 1;
                    longest = longest.max(dist[v]);
                    reached += 1;
                    queue.push_back(v);
                }
            }
        }
        if reached < n {
            return n - 1;
        }
    }
    longest
}

/// Mean local clustering coefficient (networkx `average_clustering`; 0 for degree < 2).
fn average_clustering(adjacency: &[Vec<usize>]) -> f64 {
    let n = adjacency.len();
    let mut is_neighbour = vec![false; n];
    let mut total = 0.0;
    for u in 0..n {
        let deg = adjacency[u].len();
        if deg < 2 {
            continue;
        }
        adjacency[u].iter().for_each(|&v| is_neighbour[v] = true);
        let links: usize = adjacency[u]
            .iter()
            .map(|&v| adjacency[v].iter().filter(|&&w| is_neighbour[w]).count())
            .sum();
        adjacency[u].iter().for_each(|&v| is_neighbour[v] = false);
        // Each triangle through u is seen twice in `links`.
        total += links as f64 / (deg * (deg - 1)) as f64;
    }
    total / n as f64
}

/// Metrics of the simple undirected graph on `n` nodes (0..n) with `edges` (each pair once).
pub fn subgraph_metrics(n: usize, edges: &[(usize, usize)]) -> SubgraphMetrics {
    if n <= 1 {
        return SubgraphMetrics {
            density: 0.0,
            max_avg_degree_ratio: 0.0,
            avg_clustering: 0.0,
            diameter: 0,
            single_node_score: 1.0,
            hub_spoke_score: 0.0,
            strongly_connected_score: 0.0,
            linear_score: 0.0,
        };
    }
    let mut adjacency = vec![Vec::new(); n];
    for &(a, b) in edges {
        adjacency[a].push(b);
        adjacency[b].push(a);
    }
    let m = edges.len();
    let nf = n as f64;
    // networkx: m / (n (n − 1)), doubled for undirected graphs.
    let density = if m == 0 {
        0.0
    } else {
        m as f64 / (nf * (nf - 1.0)) * 2.0
    };
    let degrees: Vec<usize> = adjacency.iter().map(Vec::len).collect();
    let mean_degree = degrees.iter().sum::<usize>() as f64 / nf;
    let max_degree = *degrees.iter().max().unwrap_or(&0) as f64;
    let ratio = if mean_degree > 0.0 {
        max_degree / mean_degree
    } else {
        0.0
    };
    let avg_clustering = average_clustering(&adjacency);
    let diameter = diameter(&adjacency);

    let v = [
        density,
        ratio.min(nf - 1.0),
        avg_clustering,
        diameter as f64,
    ];
    let hub = euclidean(&v, &[2.0 / nf, nf - 1.0, 0.0, 2.0]);
    let strong = euclidean(&v, &[1.0, 1.0, 1.0, 1.0]);
    let linear = euclidean(&v, &[2.0 / (nf - 1.0), 2.0, 0.0, nf - 1.0]);
    let total = hub + strong + linear;
    let score = |d: f64| {
        if total == 0.0 {
            1.0 / 3.0
        } else {
            1.0 - d / total
        }
    };
    SubgraphMetrics {
        density,
        max_avg_degree_ratio: ratio,
        avg_clustering,
        diameter,
        single_node_score: 0.0,
        hub_spoke_score: score(hub),
        strongly_connected_score: score(strong),
        linear_score: score(linear),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-12
    }

    #[test]
    fn three_node_path_matches_the_original() {
        // Values from the original's stored node table (fs768, subgraph 1).
        let m = subgraph_metrics(3, &[(0, 1), (1, 2)]);
        assert!(close(m.density, 0.6666666666666666));
        assert!(close(m.max_avg_degree_ratio, 1.5));
        assert_eq!(m.avg_clustering, 0.0);
        assert_eq!(m.diameter, 2);
        assert!(
            close(m.hub_spoke_score, 0.8104276870951117),
            "{}",
            m.hub_spoke_score
        );
        assert!(close(m.strongly_connected_score, 0.4174098777671813));
        assert!(close(m.linear_score, 0.7721624351377071));
    }

    #[test]
    fn single_nodes_pairs_and_triangles() {
        let one = subgraph_metrics(1, &[]);
        assert_eq!(
            (one.single_node_score, one.hub_spoke_score, one.diameter),
            (1.0, 0.0, 0)
        );
        let pair = subgraph_metrics(2, &[(0, 1)]);
        assert_eq!(
            (pair.density, pair.max_avg_degree_ratio, pair.diameter),
            (1.0, 1.0, 1)
        );
        // v = [1, 1, 0, 1]; hub ideal [1, 1, 0, 2], strong [1, 1, 1, 1], linear [2, 2, 0, 1].
        let total = 1.0 + 1.0 + 2f64.sqrt();
        assert!(close(pair.hub_spoke_score, 1.0 - 1.0 / total));
        assert!(close(pair.linear_score, 1.0 - 2f64.sqrt() / total));
        let triangle = subgraph_metrics(3, &[(0, 1), (1, 2), (0, 2)]);
        assert_eq!(
            (triangle.density, triangle.avg_clustering, triangle.diameter),
            (1.0, 1.0, 1)
        );
        // A star: hub 0 with 3 leaves; clustering 0, diameter 2, ratio 3 / 1.5 = 2.
        let star = subgraph_metrics(4, &[(0, 1), (0, 2), (0, 3)]);
        assert_eq!(
            (
                star.max_avg_degree_ratio,
                star.avg_clustering,
                star.diameter
            ),
            (2.0, 0.0, 2)
        );
        assert!(
            star.hub_spoke_score > star.linear_score
                && star.hub_spoke_score > star.strongly_connected_score
        );
        // Clustering of a triangle with a pendant: nodes 0,1 → 1, node 2 → 1/3, node 3 → 0.
        let kite = subgraph_metrics(4, &[(0, 1), (1, 2), (0, 2), (2, 3)]);
        assert!(close(kite.avg_clustering, (1.0 + 1.0 + 1.0 / 3.0) / 4.0));
    }
}
