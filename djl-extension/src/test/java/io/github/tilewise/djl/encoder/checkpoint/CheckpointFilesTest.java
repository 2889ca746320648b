package io.github.tilewise.djl.encoder.checkpoint;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.MalformedModelException;
import io.github.tilewise.djl.encoder.text.EncoderTokenizer;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Safetensors reading and writing, and the errors for bad checkpoint directories and files. */
class CheckpointFilesTest {

    @TempDir Path dir;

    @Test
    void safetensorsRoundTripAndHalfPrecisionWidening() throws Exception {
        Path file = dir.resolve("a.safetensors");
        CheckpointTensor a =
                new CheckpointTensor(
                        "a.weight", new long[] {2, 3}, new float[] {1, -2, 3.5f, 0, 1e-8f, -7});
        CheckpointTensor b = new CheckpointTensor("b", new long[] {1}, new float[] {42});
        SafetensorsFile.write(file, List.of(a, b));
        Map<String, CheckpointTensor> read = SafetensorsFile.read(file);
        assertArrayEquals(a.getData(), read.get("a.weight").getData());
        assertArrayEquals(new long[] {2, 3}, read.get("a.weight").getShape());
        assertArrayEquals(b.getData(), read.get("b").getData());

        // F16 and BF16 tensors written by hand: 1.0, -2.5, 65504 (fp16 max), a subnormal 2^-24.
        String header =
                "{\"h\":{\"dtype\":\"F16\",\"shape\":[4],\"data_offsets\":[0,8]},"
                        + "\"g\":{\"dtype\":\"BF16\",\"shape\":[2],\"data_offsets\":[8,12]},"
                        + "\"ids\":{\"dtype\":\"I64\",\"shape\":[1],\"data_offsets\":[12,20]}}";
        byte[] h = header.getBytes(StandardCharsets.UTF_8);
        ByteBuffer buf = ByteBuffer.allocate(8 + h.length + 20).order(ByteOrder.LITTLE_ENDIAN);
        buf.putLong(h.length).put(h);
        buf.putShort((short) 0x3c00)
                .putShort((short) 0xc100)
                .putShort((short) 0x7bff)
                .putShort((short) 0x0001);
        buf.putShort((short) 0x3f80).putShort((short) 0xc020); // bf16 1.0, -2.5
        buf.putLong(7);
        Path half = dir.resolve("half.safetensors");
        Files.write(half, buf.array());
        Map<String, CheckpointTensor> halves = SafetensorsFile.read(half);
        assertArrayEquals(new float[] {1f, -2.5f, 65504f, 0x1p-24f}, halves.get("h").getData());
        assertArrayEquals(new float[] {1f, -2.5f}, halves.get("g").getData());
        assertTrue(!halves.containsKey("ids"), "integer buffers are skipped");

        // Truncated: the last tensor's bytes are cut off.
        byte[] full = Files.readAllBytes(file);
        Path cut = dir.resolve("cut.safetensors");
        Files.write(cut, java.util.Arrays.copyOf(full, full.length - 3));
        MalformedModelException e =
                assertThrows(MalformedModelException.class, () -> SafetensorsFile.read(cut));
        assertTrue(
                e.getMessage().contains("cut.safetensors") && e.getMessage().contains("truncated"),
                e.getMessage());
        // Garbage header length.
        Path garbage = dir.resolve("garbage.safetensors");
        Files.write(garbage, new byte[] {(byte) 0xff, 1, 2, 3, 4, 5, 6, 7, 8, 9});
        e = assertThrows(MalformedModelException.class, () -> SafetensorsFile.read(garbage));
        assertTrue(e.getMessage().contains("header length"), e.getMessage());
    }

    @Test
    void missingFilesAreNamed() {
        NoSuchFileException e =
                assertThrows(
                        NoSuchFileException.class,
                        () -> EncoderCheckpoint.read(dir.resolve("nope.onnx")));
        assertTrue(e.getMessage().contains("nope.onnx"), e.getMessage());
        e = assertThrows(NoSuchFileException.class, () -> EncoderCheckpoint.read(dir));
        assertTrue(e.getMessage().contains(dir.toString()), e.getMessage());
    }

    @Test
    void unknownArchitectureAndMissingWeightsAreNamed() throws Exception {
        Files.writeString(
                dir.resolve("config.json"), "{\"model_type\": \"gpt2\", \"n_embd\": 768}");
        SafetensorsFile.write(dir.resolve("model.safetensors"), List.of());
        MalformedModelException e =
                assertThrows(MalformedModelException.class, () -> EncoderCheckpoint.read(dir));
        assertTrue(
                e.getMessage().contains("config.json")
                        && e.getMessage().contains("unknown architecture")
                        && e.getMessage().contains("gpt2"),
                e.getMessage());
        Files.delete(dir.resolve("model.safetensors"));
        Files.writeString(dir.resolve("pytorch_model.bin"), "pickle");
        NoSuchFileException missing =
                assertThrows(NoSuchFileException.class, () -> EncoderCheckpoint.read(dir));
        assertTrue(
                missing.getMessage().contains("model.safetensors")
                        && missing.getMessage().contains("pytorch_model.bin"),
                missing.getMessage());
    }

    @Test
    void tokenizerWithoutVocabularyIsRefused() throws IOException {
        Path tok = dir.resolve("tokenizer.json");
        Files.writeString(
                tok,
                "{\"version\":\"1.0\",\"model\":{\"type\":\"WordPiece\",\"unk_token\":\"[UNK]\",\"vocab\":{}}}");
        MalformedModelException e =
                assertThrows(
                        MalformedModelException.class, () -> EncoderTokenizer.load(tok, 16, true));
        assertTrue(
                e.getMessage().contains("tokenizer.json")
                        && e.getMessage().contains("no vocabulary"),
                e.getMessage());
        Files.writeString(tok, "{\"version\":\"1.0\"}");
        e = assertThrows(MalformedModelException.class, () -> EncoderTokenizer.load(tok, 16, true));
        assertTrue(e.getMessage().contains("model"), e.getMessage());
        Files.writeString(tok, "not json at all {");
        e = assertThrows(MalformedModelException.class, () -> EncoderTokenizer.load(tok, 16, true));
        assertTrue(e.getMessage().contains("tokenizer.json"), e.getMessage());
    }

    @Test
    void transposeIsExact() {
        CheckpointTensor t =
                new CheckpointTensor("w", new long[] {2, 3}, new float[] {1, 2, 3, 4, 5, 6});
        CheckpointTensor tt = t.transpose("wt");
        assertArrayEquals(new long[] {3, 2}, tt.getShape());
        assertArrayEquals(new float[] {1, 4, 2, 5, 3, 6}, tt.getData());
        assertEquals("wt", tt.getName());
    }
}
