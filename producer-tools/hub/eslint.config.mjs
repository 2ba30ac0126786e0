// eslint.config.mjs - the hub package's lint (`npm run lint`; ctest
// unit/hub_package_lint runs it with the isolatedModules type check):
// ESLint's and typescript-eslint's recommended rules over src/, test/ and
// scripts/. The type-aware set (recommendedTypeChecked) is not on: on this
// code it is mostly node:test's floating test() promises and JSON.parse's
// `any` in tests, which tsc's strict mode already bounds.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  // Only the package's own code: this file and the build outputs are not linted.
  { ignores: ['dist/', 'dist-test/', 'node_modules/', 'eslint.config.mjs'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    // The build scripts are plain CommonJS run by node.
    files: ['scripts/**/*.js'],
    languageOptions: {
      sourceType: 'commonjs',
      globals: { require: 'readonly', module: 'writable', process: 'readonly', __dirname: 'readonly', console: 'readonly' },
    },
    rules: { '@typescript-eslint/no-require-imports': 'off' }, // CommonJS: require() is how it imports
  },
);
