// The repository root (and the GitHub Pages root) opens the app, keeping a shared link's query and hash.
location.replace("web/" + location.search + location.hash);
