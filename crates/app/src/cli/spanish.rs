//! clap speaks English ("Usage:", "Options:", "Print help", "[default: …]", its error
//! messages). The operators of this program read Spanish, so the command tree is
//! rewritten once here (headings, own -h/-V flags, defaults, values and variables written
//! into each option's help) and clap's errors are rendered from their parts in Spanish.

use clap::builder::StyledStr;
use clap::error::{ContextKind, ContextValue, ErrorKind};
use clap::{Arg, ArgAction, Command, CommandFactory};

use super::Cli;

/// Every help page has this shape; the words are ours, the parts clap's.
const TEMPLATE: &str = "{before-help}{about-with-newline}\nUso: {usage}\n\n{all-args}{after-help}";

/// The command tree, all in Spanish, ready to parse.
pub fn command() -> Command {
    let mut cmd = localize(Cli::command(), true);
    // Usages are rendered by clap once the tree is built (global options propagated, the
    // full "incidencias outbox list" names known); only then can their words change.
    cmd.build();
    spanish_usage(&mut cmd);
    cmd
}

fn localize(cmd: Command, root: bool) -> Command {
    let mut cmd = cmd
        .help_template(TEMPLATE)
        .disable_help_flag(true)
        .disable_help_subcommand(true)
        .subcommand_help_heading("Comandos")
        .subcommand_value_name("COMANDO")
        .arg(
            Arg::new("help")
                .short('h')
                .long("help")
                .action(ArgAction::Help)
                .help("Muestra esta ayuda (con -h, resumida)"),
        );
    if root {
        cmd = cmd.disable_version_flag(true).arg(
            Arg::new("version")
                .short('V')
                .long("version")
                .action(ArgAction::Version)
                .help("Muestra la versión"),
        );
    }
    cmd.mut_args(spanish_arg)
        .mut_subcommands(|sub| localize(sub, false))
}

/// One option's help with clap's bracketed English notes ([default: …], [env: …],
/// [possible values: …]) rewritten in Spanish into the text itself. Variables are listed
/// by name only: their values may be passwords.
fn spanish_arg(arg: Arg) -> Arg {
    let heading = if arg.is_positional() {
        "Argumentos"
    } else {
        "Opciones"
    };
    let mut notes = Vec::new();
    if arg.get_action().takes_values() {
        let defaults: Vec<String> = arg
            .get_default_values()
            .iter()
            .map(|v| v.to_string_lossy().into_owned())
            .collect();
        if !defaults.is_empty() && !arg.is_hide_default_value_set() {
            notes.push(format!("[predeterminado: {}]", defaults.join(", ")));
        }
        let values: Vec<String> = arg
            .get_possible_values()
            .iter()
            .filter(|v| !v.is_hide_set())
            .map(|v| v.get_name().to_string())
            .collect();
        if !values.is_empty() && !arg.is_hide_possible_values_set() {
            notes.push(format!("[valores: {}]", values.join(", ")));
        }
    }
    if let Some(env) = arg.get_env()
        && !arg.is_hide_env_set()
    {
        notes.push(format!("[variable: {}]", env.to_string_lossy()));
    }
    let with_notes = |text: Option<&StyledStr>| -> Option<String> {
        let text = text?.to_string();
        Some(if notes.is_empty() {
            text
        } else {
            format!("{text} {}", notes.join(" "))
        })
    };
    let help = with_notes(arg.get_help());
    let long_help = with_notes(arg.get_long_help());
    let takes_values = arg.get_action().takes_values();
    let has_env = arg.get_env().is_some();
    let mut arg = arg.help_heading(heading);
    if takes_values {
        arg = arg.hide_default_value(true).hide_possible_values(true);
    }
    if has_env {
        arg = arg.hide_env(true);
    }
    if let Some(help) = help {
        arg = arg.help(help);
    }
    if let Some(long_help) = long_help {
        arg = arg.long_help(long_help);
    }
    arg
}

/// Replaces clap's "[OPTIONS]" in each rendered usage line.
fn spanish_usage(cmd: &mut Command) {
    for sub in cmd.get_subcommands_mut() {
        spanish_usage(sub);
    }
    let rendered = cmd.render_usage().to_string();
    let usage = rendered
        .trim()
        .trim_start_matches("Usage:")
        .trim()
        .replace("[OPTIONS]", "[OPCIONES]");
    *cmd = std::mem::take(cmd).override_usage(usage);
}

/// Shows help or version, or reports a command-line mistake in Spanish; returns the exit
/// code (0 for help and version, 2 for a mistake, as clap would).
pub fn report(e: &clap::Error) -> i32 {
    match e.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
            let text = e.render().to_string();
            print!("{text}");
            if !text.ends_with('\n') {
                println!();
            }
            0
        }
        ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            eprint!("{}", e.render());
            2
        }
        _ => {
            eprintln!("error: {}\n\nUse --help para ver las opciones.", message(e));
            2
        }
    }
}

fn text(value: &ContextValue) -> String {
    match value {
        ContextValue::String(s) => s.clone(),
        ContextValue::Strings(list) => list.join(", "),
        ContextValue::StyledStr(s) => s.to_string(),
        ContextValue::StyledStrs(list) => list
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", "),
        other => other.to_string(),
    }
}

/// The mistake in one Spanish sentence, from the parts clap recorded.
pub fn message(e: &clap::Error) -> String {
    let get = |kind| e.get(kind).map(text).unwrap_or_default();
    let arg = get(ContextKind::InvalidArg);
    let value = get(ContextKind::InvalidValue);
    let mut sentence = match e.kind() {
        ErrorKind::InvalidValue if value.is_empty() => format!("{arg} necesita un valor"),
        ErrorKind::InvalidValue => {
            let valid = get(ContextKind::ValidValue);
            if valid.is_empty() {
                format!("«{value}» no es un valor válido para {arg}")
            } else {
                format!("«{value}» no es un valor válido para {arg}; valores posibles: {valid}")
            }
        }
        ErrorKind::ValueValidation => {
            let reason = std::error::Error::source(e).map_or(String::new(), ToString::to_string);
            format!("valor no válido para {arg}: {reason}")
        }
        ErrorKind::UnknownArgument => format!("opción desconocida: {arg}"),
        ErrorKind::InvalidSubcommand => {
            format!(
                "comando desconocido: {}",
                get(ContextKind::InvalidSubcommand)
            )
        }
        ErrorKind::MissingSubcommand => format!(
            "falta el comando; los disponibles son: {}",
            get(ContextKind::ValidSubcommand)
        ),
        ErrorKind::MissingRequiredArgument => format!("falta {arg}"),
        ErrorKind::NoEquals => format!("{arg} necesita su valor con «=»"),
        ErrorKind::TooManyValues => format!("sobra el valor «{value}» para {arg}"),
        ErrorKind::TooFewValues | ErrorKind::WrongNumberOfValues => {
            format!("número de valores incorrecto para {arg}")
        }
        ErrorKind::ArgumentConflict => format!(
            "{arg} no se puede usar junto con {}",
            get(ContextKind::PriorArg)
        ),
        ErrorKind::InvalidUtf8 => "un argumento no es texto UTF-8 válido".into(),
        _ => "la línea de comandos no es válida".into(),
    };
    let suggestion = [
        ContextKind::SuggestedArg,
        ContextKind::SuggestedSubcommand,
        ContextKind::SuggestedValue,
    ]
    .into_iter()
    .map(get)
    .find(|s| !s.is_empty());
    if let Some(s) = suggestion {
        sentence.push_str(&format!(" (¿quiso decir {s}?)"));
    }
    sentence
}
