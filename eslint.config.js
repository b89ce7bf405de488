import js from '@eslint/js';
import boundaries from 'eslint-plugin-boundaries';
import tseslint from 'typescript-eslint';

/**
 * The layers (docs/architecture.md): each folder of src/ is one element and may import only the
 * elements listed for it. Tests and test support may reach anywhere.
 */
const layers = {
  domain: [],
  secrets: ['domain'],
  config: ['domain', 'secrets'],
  store: ['domain'],
  audit: ['domain', 'store'],
  'connector-interface': ['domain', 'config', 'connector', 'connector-interface'],
  connector: ['domain', 'config', 'connector', 'connector-interface'],
  auth: ['domain', 'config', 'secrets', 'store', 'audit'],
  // Systems asked for facts policies read (on-call, tickets); they reuse the webhook connector's
  // transport and signing.
  integrations: ['domain', 'config', 'connector'],
  notify: ['domain', 'config'],
  engine: ['domain', 'config', 'secrets', 'store', 'audit', 'connector-interface', 'integrations', 'notify'],
  api: ['domain', 'config', 'auth', 'audit', 'engine', 'connector-interface'],
  cli: ['domain', 'config', 'secrets', 'auth', 'audit', 'engine', 'api', 'connector-interface'],
};

/** The dependency rule for the layers above, with `extra` allowed to the cli (its composition root). */
function layerRule(extra = {}) {
  const allowed = { ...layers, ...Object.fromEntries(Object.entries(extra).map(([from, to]) => [from, [...layers[from], ...to]])) };
  return [
    'error',
    {
      default: 'disallow',
      policies: Object.entries(allowed).map(([from, to]) => ({
        from: { element: { type: from } },
        allow: { to: { element: { types: { anyOf: to.length > 0 ? to : ['-none-'] } } } },
      })),
    },
  ];
}

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'coverage/**', '.lapse/**', '.lapse-demo/**', 'web/dist/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/consistent-type-imports': 'error',
      'no-console': 'error',
    },
  },
  {
    files: ['src/**/*.ts'],
    ignores: ['src/**/*.test.ts', 'src/**/testing/**'],
    plugins: { boundaries },
    settings: {
      'import/resolver': { typescript: { alwaysTryTypes: true, project: './tsconfig.json' } },
      'boundaries/dependency-nodes': ['import', 'export', 'dynamic-import'],
      'boundaries/elements': [
        { type: 'domain', pattern: 'src/domain' },
        { type: 'secrets', pattern: 'src/secrets' },
        { type: 'config', pattern: 'src/config' },
        { type: 'store', pattern: 'src/store' },
        { type: 'audit', pattern: 'src/audit' },
        { type: 'connector', pattern: 'src/connectors/*' },
        { type: 'connector-interface', pattern: 'src/connectors' },
        { type: 'auth', pattern: 'src/auth' },
        { type: 'integrations', pattern: 'src/integrations' },
        { type: 'notify', pattern: 'src/notify' },
        { type: 'engine', pattern: 'src/engine' },
        { type: 'api', pattern: 'src/api' },
        { type: 'cli', pattern: 'src/cli' },
      ],
    },
    rules: { 'boundaries/dependencies': layerRule() },
  },
  {
    // The composition root: it opens and migrates the database before there is an engine to ask.
    files: ['src/cli/context.ts', 'src/cli/commands/migrate.ts'],
    rules: { 'boundaries/dependencies': layerRule({ cli: ['store'] }) },
  },
  {
    // The API and the CLI reach the database and the targets only through engine and auth use-cases
    // (the auth service is bound to the database in the composition root): see docs/architecture.md.
    files: ['src/api/**/*.ts', 'src/cli/**/*.ts'],
    ignores: ['src/**/*.test.ts'],
    rules: {
      'no-restricted-syntax': [
        'error',
        {
          selector: "MemberExpression[property.name=/^(store|sealer|connectors)$/]:matches([object.name='engine'], [object.property.name='engine'])",
          message: 'Call an engine or AuthService use-case instead of reaching into the engine (docs/architecture.md).',
        },
      ],
    },
  },
  {
    files: ['bin/**/*.js'],
    languageOptions: { globals: { process: 'readonly', URL: 'readonly' } },
  },
);
