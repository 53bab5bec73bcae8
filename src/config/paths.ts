/** Where the configuration is looked for when neither --config nor $LECTERN_CONFIG names it. */
export const DEFAULT_CONFIG_PATH = '/etc/lectern/config.yaml';
