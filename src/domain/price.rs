//! What an agent's tokens cost, for the kinds whose logs report tokens but no cost (Codex,
//! Gemini): a price table per profile (`[agents.NAME.prices]`) turns a run's tokens into an
//! estimate. Without one the cost stays unknown: never a 0 that would read as "free".

use serde::Serialize;

use crate::domain::verdict::Usage;

/// US dollars per million tokens.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Prices {
    pub input: f64,
    /// Input tokens served from the provider's cache; priced as `input` when not given.
    pub cached_input: Option<f64>,
    pub output: f64,
}

impl Prices {
    /// The estimate for `usage`: None when the log gave no token counts at all. Cached tokens are
    /// taken as part of the input count (as Codex and Gemini report them).
    pub fn estimate(&self, usage: &Usage) -> Option<f64> {
        if usage.input_tokens.is_none() && usage.output_tokens.is_none() {
            return None;
        }
        let input = usage.input_tokens.unwrap_or(0) as f64;
        let cached = (usage.cache_read_tokens.unwrap_or(0) as f64).min(input);
        let output = usage.output_tokens.unwrap_or(0) as f64;
        let per = |tokens: f64, usd: f64| tokens * usd / 1_000_000.0;
        let cost = per(input - cached, self.input)
            + per(cached, self.cached_input.unwrap_or(self.input))
            + per(output, self.output);
        cost.is_finite().then_some(cost)
    }

    /// `usage` with its cost estimated when its log gave none; a cost the agent reported is kept.
    pub fn apply(&self, usage: &mut Usage) {
        if usage.cost_usd.is_none() {
            usage.cost_usd = self.estimate(usage);
            usage.cost_estimated = usage.cost_usd.is_some();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PRICES: Prices = Prices {
        input: 1.25,
        cached_input: Some(0.125),
        output: 10.0,
    };

    #[test]
    fn tokens_times_prices_cached_input_apart() {
        let usage = Usage {
            input_tokens: Some(1_200),
            cache_read_tokens: Some(200),
            output_tokens: Some(150),
            ..Usage::default()
        };
        let cost = PRICES.estimate(&usage).unwrap();
        let expected = (1_000.0 * 1.25 + 200.0 * 0.125 + 150.0 * 10.0) / 1e6;
        assert!((cost - expected).abs() < 1e-12, "{cost}");
        assert_eq!(PRICES.estimate(&Usage::default()), None);
    }

    #[test]
    fn an_estimate_never_replaces_a_reported_cost() {
        let mut reported = Usage {
            cost_usd: Some(0.5),
            input_tokens: Some(10),
            ..Usage::default()
        };
        PRICES.apply(&mut reported);
        assert_eq!(
            (reported.cost_usd, reported.cost_estimated),
            (Some(0.5), false)
        );
        let mut tokens_only = Usage {
            input_tokens: Some(1_000_000),
            ..Usage::default()
        };
        PRICES.apply(&mut tokens_only);
        assert_eq!(tokens_only.cost_usd, Some(1.25));
        assert!(tokens_only.cost_estimated);
        let mut nothing = Usage::default();
        PRICES.apply(&mut nothing);
        assert_eq!((nothing.cost_usd, nothing.cost_estimated), (None, false));
    }
}
