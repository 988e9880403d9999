// @ts-check
// Tandem web client: the page's entry. The features live in app/, one
// module per part of the page (app/state.js holds what they share); the
// layer under them (signaling.js, call.js, media.js, assist.js, …) is the
// client library other pages can use (examples/).

import { showBanner } from './ui.js';
import { boot } from './app/boot.js';
import { showSignIn } from './app/signin.js';
import { errorText } from './app/state.js';

boot().catch((err) => {
  console.error('tandem: start-up failed', err);
  showSignIn();
  showBanner(`Tandem could not start: ${errorText(err)}`);
});
