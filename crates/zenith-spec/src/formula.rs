//! Score formulas: the arithmetic a canary's analysis may use to turn the router's metrics
//! into one number, such as the seed's bio energy score. Parsing is `exmex`'s; this module
//! adds what zenith promises on top: only the variables of [`SCORE_VARIABLES`] are accepted
//! (so a typo is caught when the spec is checked, not in the middle of a rollout), variables
//! are looked up by name rather than by position, and a result that is not a finite number
//! (a division by zero) is an error instead of a score that passes or fails by accident.

use std::fmt;

use exmex::{Express, FlatEx, FloatOpsFactory, MakeOperators};

use crate::model::SCORE_VARIABLES;

/// A score formula, parsed once and evaluated at every analysis check.
///
/// ```
/// use zenith_spec::formula::Formula;
///
/// let f = Formula::parse("100 - error_rate * 5")?;
/// assert_eq!(f.variables(), ["error_rate"]);
/// let score = f.eval(|name| (name == "error_rate").then_some(2.0))?;
/// assert_eq!(score, 90.0);
/// # Ok::<(), String>(())
/// ```
#[derive(Debug, Clone)]
pub struct Formula {
    text: String,
    expr: FlatEx<f64>,
}

impl Formula {
    /// Parse `text`. The error gives exmex's reason for a syntax error, or names every unknown
    /// variable and lists the ones a score may use.
    pub fn parse(text: &str) -> Result<Formula, String> {
        if text.trim().is_empty() {
            return Err(format!("the formula is empty; write one over {}", known_list()));
        }
        let expr = match exmex::parse::<f64>(text) {
            Ok(expr) => expr,
            // exmex reads `foo(3)` as a variable beside a parenthesis and says so in its own
            // terms; an unknown name is the likelier mistake and the one worth reporting.
            Err(e) => match unknown("name", names(text)) {
                Some(unknown) => return Err(unknown),
                None => {
                    return Err(format!(
                        "cannot parse the formula: {}; write arithmetic with + - * / ^ and parentheses over {}",
                        e.msg(),
                        known_list()
                    ));
                }
            },
        };
        if let Some(unknown) = unknown("variable", expr.var_names().iter().map(String::as_str)) {
            return Err(unknown);
        }
        Ok(Formula {
            text: text.to_string(),
            expr,
        })
    }

    /// The variables the formula uses, each once, sorted by name.
    pub fn variables(&self) -> Vec<String> {
        self.expr.var_names().to_vec()
    }

    /// Evaluate with each variable's value from `lookup`. An error names the first variable
    /// that `lookup` has no value for, or says that the result is not a finite number.
    pub fn eval(&self, lookup: impl Fn(&str) -> Option<f64>) -> Result<f64, String> {
        let values = self
            .expr
            .var_names()
            .iter()
            .map(|name| lookup(name).ok_or_else(|| format!("no value for variable `{name}` of the score formula")))
            .collect::<Result<Vec<f64>, String>>()?;
        let score = self
            .expr
            .eval(&values)
            .map_err(|e| format!("cannot evaluate the score formula: {}", e.msg()))?;
        if score.is_finite() {
            Ok(score)
        } else {
            Err(format!(
                "the score formula gave {score}, not a finite number (a division by zero?); \
                 guard the divisor, e.g. (requests + 1)"
            ))
        }
    }

    /// The formula as it was written.
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

impl fmt::Display for Formula {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// The error for the names that are neither score variables nor exmex's functions and
/// constants, or `None` when every name is known.
fn unknown<'a>(noun: &str, names: impl Iterator<Item = &'a str>) -> Option<String> {
    let ops = FloatOpsFactory::<f64>::make();
    let mut unknown: Vec<&str> = names
        .filter(|n| !SCORE_VARIABLES.iter().any(|(known, _)| known == n))
        .filter(|n| !ops.iter().any(|op| op.repr() == *n))
        .collect();
    unknown.sort_unstable();
    unknown.dedup();
    if unknown.is_empty() {
        return None;
    }
    let s = if unknown.len() == 1 { "" } else { "s" };
    let quoted: Vec<String> = unknown.iter().map(|v| format!("`{v}`")).collect();
    Some(format!(
        "unknown {noun}{s} {}; a score may use {}",
        quoted.join(", "),
        known_list()
    ))
}

/// The identifiers of `text` (runs of letters, digits and `_` not starting with a digit):
/// enough to name a misspelt variable in a formula exmex could not parse.
fn names(text: &str) -> impl Iterator<Item = &str> {
    text.split(|c: char| !(c.is_alphanumeric() || c == '_'))
        .filter(|word| word.starts_with(|c: char| c.is_alphabetic() || c == '_'))
}

/// `error_rate, success_rate, …` for messages.
fn known_list() -> String {
    let names: Vec<&str> = SCORE_VARIABLES.iter().map(|(name, _)| *name).collect();
    format!("these variables: {}", names.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The seed's bio energy score.
    const SEED: &str = "(100 - error_rate*5)*0.5 + (200 - response_time_ms)*0.3 + (100 - cpu_utilization)*0.2";

    fn metrics(name: &str) -> Option<f64> {
        match name {
            "error_rate" => Some(2.0),
            "response_time_ms" => Some(120.0),
            "cpu_utilization" => Some(40.0),
            _ => None,
        }
    }

    #[test]
    fn the_seed_formula_evaluates() {
        let f = Formula::parse(SEED).unwrap();
        assert_eq!(f.variables(), ["cpu_utilization", "error_rate", "response_time_ms"]);
        // (100 - 10) * 0.5 + (200 - 120) * 0.3 + (100 - 40) * 0.2 = 45 + 24 + 12
        let score = f.eval(metrics).unwrap();
        assert!((score - 81.0).abs() < 1e-9, "{score}");
        assert_eq!(f.as_str(), SEED);
    }

    #[test]
    fn unknown_variables_are_named_with_the_known_ones() {
        let e = Formula::parse("100 - eror_rate - cpu").unwrap_err();
        assert!(e.starts_with("unknown variables `cpu`, `eror_rate`;"), "{e}");
        assert!(e.contains("error_rate, success_rate, request_rate"), "{e}");
        // A function exmex does not know: its parse error would talk about parentheses.
        let e = Formula::parse("100 - foo(error_rate)").unwrap_err();
        assert!(e.starts_with("unknown name `foo`;"), "{e}");
        assert!(Formula::parse("sqrt(p99_ms) + abs(error_rate) * PI").is_ok());
    }

    #[test]
    fn syntax_errors_say_how_to_write_one() {
        for bad in ["(100 - error_rate", "100 -* ", "   "] {
            let e = Formula::parse(bad).unwrap_err();
            assert!(e.contains("error_rate, success_rate"), "{bad}: {e}");
        }
        let e = Formula::parse("(100 - error_rate").unwrap_err();
        assert!(e.starts_with("cannot parse the formula"), "{e}");
    }

    #[test]
    fn a_missing_value_names_the_variable() {
        let f = Formula::parse("p99_ms + error_rate").unwrap();
        let e = f.eval(metrics).unwrap_err();
        assert!(e.contains("`p99_ms`"), "{e}");
    }

    #[test]
    fn a_division_by_zero_is_an_error() {
        let f = Formula::parse("100 / requests").unwrap();
        let e = f.eval(|_| Some(0.0)).unwrap_err();
        assert!(e.contains("not a finite number"), "{e}");
        assert_eq!(f.eval(|_| Some(4.0)).unwrap(), 25.0);
        let nan = Formula::parse("requests / requests").unwrap();
        assert!(nan.eval(|_| Some(0.0)).is_err());
    }

    #[test]
    fn a_formula_without_variables_is_a_constant() {
        let f = Formula::parse("2 * (3 + 4)").unwrap();
        assert!(f.variables().is_empty());
        assert_eq!(f.eval(|_| None).unwrap(), 14.0);
    }
}
