// @ts-check
// Popping the call out into a picture-in-picture window and back.
import { popOut, popIn, isPoppedOut } from '../pip.js';
import { el, toast, setIcon, safePlay } from '../ui.js';
import { S, errorText, tiles } from './state.js';

export async function togglePopout() {
  if (isPoppedOut()) {
    popIn();
    return;
  }
  try {
    await popOut(el.callLayer, {
      width: 380,
      height: 520,
      onMoved: () => {
        setIcon(el.popout.firstElementChild, 'popIn');
        el.popout.setAttribute('aria-label', 'Return call to the main window');
        tiles.playAll();
        safePlay(el.localVideo);
        if (S.call && S.call.view) S.call.view.rewatch();
      },
      onReturn: () => {
        setIcon(el.popout.firstElementChild, 'popOut');
        el.popout.setAttribute('aria-label', 'Pop out call window');
        tiles.playAll();
        safePlay(el.localVideo);
        if (S.call && S.call.view) S.call.view.rewatch();
      },
    });
  } catch (err) {
    toast(`Could not pop out: ${errorText(err)}`);
  }
}
