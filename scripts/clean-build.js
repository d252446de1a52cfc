// `npm run build` starts from an empty build/: tsc never deletes the output of a moved or removed source,
// and an old build/src/train.js would shadow the new build/src/train/index.js for every notebook.
require('fs').rmSync(require('path').join(__dirname, '..', 'build'), { recursive: true, force: true });
