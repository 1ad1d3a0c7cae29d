//! The command line as people use it: settings accepted before or after
//! the subcommand (`tooltool token --data-dir d …` works like
//! `tooltool --data-dir d token …`), and argument errors as one line that
//! names the environment variable (most settings arrive that way, while
//! clap's own message names the flag) and the values it accepts.

use clap::error::{ContextKind, ContextValue, ErrorKind};
use clap::{CommandFactory, FromArgMatches};

use super::Cli;

impl Cli {
    /// The command definition, with every setting global.
    #[must_use]
    pub fn definition() -> clap::Command {
        <Self as CommandFactory>::command().mut_args(|arg| {
            if arg.is_positional() {
                arg
            } else {
                arg.global(true)
            }
        })
    }

    /// Parses `args` (the program name first).
    ///
    /// # Errors
    /// clap's error, for [`error_line`] (or `print` for `--help`).
    pub fn parse_args<I, T>(args: I) -> Result<Self, clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        let matches = Self::definition().try_get_matches_from(args)?;
        Self::from_arg_matches(&matches)
    }
}

/// The environment variable of the flag `--name`, if it has one.
fn variable_of(long: &str) -> Option<String> {
    let command = Cli::definition();
    let mut commands = vec![&command];
    commands.extend(command.get_subcommands());
    commands
        .iter()
        .flat_map(|c| c.get_arguments())
        .find(|a| a.get_long() == Some(long))
        .and_then(|a| a.get_env())
        .map(|env| env.to_string_lossy().into_owned())
}

fn text(value: Option<&ContextValue>) -> Option<String> {
    match value? {
        ContextValue::String(s) => Some(s.clone()),
        ContextValue::Strings(v) => Some(v.join(", ")),
        _ => None,
    }
}

/// One line for a command-line error: `VARIABLE (--flag): invalid value
/// 'x': why (allowed: a, b)` for a rejected value, clap's first line
/// otherwise.
#[must_use]
pub fn error_line(e: &clap::Error) -> String {
    let rendered = e.to_string();
    let first = rendered
        .lines()
        .next()
        .unwrap_or("invalid arguments")
        .trim_start_matches("error: ")
        .to_owned();
    if !matches!(
        e.kind(),
        ErrorKind::InvalidValue | ErrorKind::ValueValidation
    ) {
        return first;
    }
    // "--upload-expires-in <UPLOAD_EXPIRES_IN>"
    let Some(arg) = text(e.get(ContextKind::InvalidArg)) else {
        return first;
    };
    let flag = arg.split_whitespace().next().unwrap_or(&arg).to_owned();
    let setting = match flag.strip_prefix("--").and_then(variable_of) {
        Some(variable) => format!("{variable} ({flag})"),
        None => flag,
    };
    let value = text(e.get(ContextKind::InvalidValue)).unwrap_or_default();
    let mut line = format!("{setting}: invalid value '{value}'");
    if let Some(why) = std::error::Error::source(e) {
        line.push_str(&format!(": {why}"));
    }
    if let Some(allowed) = text(e.get(ContextKind::ValidValue)) {
        line.push_str(&format!(" (allowed: {allowed})"));
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(args: &[&str]) -> String {
        let mut all = vec!["tooltool"];
        all.extend_from_slice(args);
        error_line(&Cli::parse_args(all).expect_err("invalid"))
    }

    #[test]
    fn rejected_values_name_the_variable_and_the_allowed_values() {
        assert_eq!(
            line(&["--upload-expires-in", "abc"]),
            "UPLOAD_EXPIRES_IN (--upload-expires-in): invalid value 'abc': invalid digit found in string"
        );
        assert_eq!(
            line(&["--log-format", "xml"]),
            "LOG_FORMAT (--log-format): invalid value 'xml' (allowed: text, json)"
        );
        assert!(
            line(&["token", "--sub", "a", "--scope", "b", "--ttl", "soon"])
                .starts_with("--ttl: invalid value 'soon': "),
            "a subcommand's flag without a variable is named as a flag"
        );
        assert_eq!(
            line(&["--no-such-flag"]),
            "unexpected argument '--no-such-flag' found"
        );
    }

    #[test]
    fn settings_are_accepted_after_the_subcommand() {
        let cli = Cli::parse_args([
            "tooltool",
            "token",
            "--data-dir",
            "/srv/tooltool",
            "--sub",
            "me",
            "--scope",
            "s",
        ])
        .expect("parses");
        assert_eq!(
            cli.config.data_dir,
            std::path::PathBuf::from("/srv/tooltool")
        );
        let cli = Cli::parse_args(["tooltool", "--data-dir", "/a", "migrate"]).expect("parses");
        assert_eq!(cli.config.data_dir, std::path::PathBuf::from("/a"));
    }
}
