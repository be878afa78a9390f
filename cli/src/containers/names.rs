//! Container names: docker's validation rule and its `adjective_surname`
//! generated names.

use rand::seq::SliceRandom;
use rand::Rng;

#[rustfmt::skip]
const ADJECTIVES: &[&str] = &[
    "admiring", "adoring", "affectionate", "amazing", "awesome", "beautiful", "blissful", "bold",
    "boring", "brave", "busy", "charming", "clever", "compassionate", "confident", "cool",
    "determined", "dreamy", "eager", "ecstatic", "elastic", "elegant", "eloquent", "epic",
    "exciting", "festive", "focused", "friendly", "funny", "gallant", "gifted", "gracious",
    "happy", "hopeful", "inspiring", "intelligent", "jolly", "jovial", "keen", "kind", "laughing",
    "loving", "lucid", "magical", "modest", "musing", "nice", "nifty", "nostalgic", "optimistic",
    "peaceful", "pensive", "practical", "quirky", "relaxed", "serene", "sharp", "silly", "sleepy",
    "stoic", "sweet", "tender", "trusting", "upbeat", "vibrant", "vigilant", "wizardly",
    "wonderful", "youthful", "zealous", "zen",
];

/// Scientists and engineers, as in docker's generator.
#[rustfmt::skip]
const SURNAMES: &[&str] = &[
    "allen", "archimedes", "babbage", "bardeen", "bartik", "bhabha", "blackwell", "bohr", "booth",
    "brattain", "carson", "cerf", "chandrasekhar", "curie", "darwin", "diffie", "dijkstra",
    "einstein", "elion", "engelbart", "euclid", "euler", "faraday", "fermi", "feynman", "franklin",
    "galileo", "gauss", "goldberg", "goodall", "hamilton", "hawking", "hellman", "hodgkin",
    "hopper", "hypatia", "jennings", "kepler", "kilby", "knuth", "lamport", "liskov", "lovelace",
    "mayer", "mcclintock", "meitner", "morse", "napier", "nash", "newton", "noether", "pascal",
    "pasteur", "pike", "poincare", "ramanujan", "ritchie", "rubin", "sammet", "shannon",
    "shockley", "tesla", "thompson", "torvalds", "turing", "varahamihira", "wiles", "wilson",
    "wing", "wozniak", "wu", "yalow", "yonath",
];

/// A random `adjective_surname`; on a retry a digit is appended, as docker
/// does when the first pick is taken.
pub fn generate(retry: u32) -> String {
    let mut rng = rand::thread_rng();
    loop {
        let adjective = ADJECTIVES.choose(&mut rng).copied().unwrap_or("happy");
        let surname = SURNAMES.choose(&mut rng).copied().unwrap_or("turing");
        // Steve Wozniak is not boring (docker's one exception).
        if adjective == "boring" && surname == "wozniak" {
            continue;
        }
        let mut name = format!("{adjective}_{surname}");
        if retry > 0 {
            name.push_str(&rng.gen_range(0..10).to_string());
        }
        return name;
    }
}

/// docker's rule for `--name`: `/?[a-zA-Z0-9][a-zA-Z0-9_.-]+`. Returns the
/// name without its optional slash, or docker's refusal message.
pub fn validate(name: &str) -> Result<&str, String> {
    let bare = name.strip_prefix('/').unwrap_or(name);
    let mut chars = bare.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphanumeric());
    let rest: Vec<char> = chars.collect();
    let rest_ok = !rest.is_empty()
        && rest
            .iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    if first_ok && rest_ok {
        Ok(bare)
    } else {
        Err(format!(
            "Invalid container name ({name}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_dockers_rule() {
        for ok in ["ab", "web-1", "a.b_c", "/web", "0x"] {
            assert!(validate(ok).is_ok(), "{ok}");
        }
        assert_eq!(validate("/web"), Ok("web"));
        for bad in ["a", "", "/", "-web", "_x", "a b", "web/1", "wéb", ".x"] {
            assert!(validate(bad).is_err(), "{bad}");
        }
        assert_eq!(
            validate("a b").unwrap_err(),
            "Invalid container name (a b), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
        );
    }

    #[test]
    fn generated_names_are_valid() {
        for retry in 0..50 {
            let name = generate(retry % 2);
            assert!(validate(&name).is_ok(), "{name}");
            assert_ne!(name, "boring_wozniak");
            let (adj, rest) = name.split_once('_').unwrap();
            assert!(ADJECTIVES.contains(&adj));
            let surname = rest.trim_end_matches(|c: char| c.is_ascii_digit());
            assert!(SURNAMES.contains(&surname));
            assert_eq!(rest.len() > surname.len(), retry % 2 == 1);
        }
    }
}
