import { notYet } from './not-yet.js';

notYet('mongrel2', 'the bundled server core (use the real mongrel2 from Debian mongrel2-core meanwhile)');
