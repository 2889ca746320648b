package io.github.tilewise.tribuo;

import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Set;
import org.tribuo.util.tokens.impl.wordpiece.Wordpiece;

/**
 * Tribuo's greedy longest-match-first {@link Wordpiece}, giving the same pieces, in time linear in
 * the word's length.
 *
 * <p>The original tries every end of the word for every start, each candidate a fresh substring:
 * cubic in the word's length, which {@code max_input_chars_per_word} from the file bounds (so a
 * crafted {@code tokenizer.json} with a huge value made one long word take hours). A candidate
 * longer than the longest vocabulary entry can never match, so the search starts there instead: at
 * most {@code longest} candidates of at most {@code longest} characters per piece.
 */
final class BoundedWordpiece extends Wordpiece {

    private static final String CONTINUATION = "##";

    private final Set<String> vocab;
    private final String unknownToken;
    private final int maxInputChars;
    private final int longest;

    /**
     * Creates the tokenizer.
     *
     * @param vocab the vocabulary (not copied; must not change)
     * @param unknownToken the piece for a word that cannot be split
     * @param maxInputChars longer words are one unknown piece
     */
    BoundedWordpiece(Set<String> vocab, String unknownToken, int maxInputChars) {
        super(vocab, unknownToken, maxInputChars);
        this.vocab = vocab;
        this.unknownToken = unknownToken;
        this.maxInputChars = maxInputChars;
        int max = 0;
        for (String piece : vocab) {
            max = Math.max(max, piece.length());
        }
        this.longest = max;
    }

    @Override
    public List<String> wordpiece(String word) {
        if (word.length() > maxInputChars) {
            return Collections.singletonList(unknownToken);
        }
        List<String> pieces = new ArrayList<>();
        int start = 0;
        while (start < word.length()) {
            String prefix = start == 0 ? "" : CONTINUATION;
            int end = Math.min(word.length(), start + longest - prefix.length());
            String piece = null;
            for (; end > start; end--) {
                String candidate = prefix + word.substring(start, end);
                if (vocab.contains(candidate)) {
                    piece = candidate;
                    break;
                }
            }
            if (piece == null) {
                return Collections.singletonList(unknownToken);
            }
            pieces.add(piece);
            start = end;
        }
        return pieces;
    }
}
